import type { FastifyInstance } from 'fastify'
import { adminPage, type PageRequest } from '../admin/paging.ts'
import { dateTime, errorResponse, idParams, listOf, listQuery, uuid } from '../admin/schemas.ts'
import type { Deps } from '../deps.ts'
import { notFound } from '../lib/errors.ts'
import { getWalletAddress } from '../wallet-addresses/service.ts'
import {
  findGrant,
  type Grant,
  type GrantFilter,
  listGrants,
  listGrantsPage,
  revokeGrant,
} from './grants.ts'
import { introspect } from './introspection.ts'

const grantSchema = {
  type: 'object',
  required: ['id', 'state', 'client', 'access', 'createdAt'],
  properties: {
    id: uuid,
    state: { type: 'string', enum: ['pending', 'approved', 'finalized'] },
    finalization: { type: 'string', enum: ['issued', 'revoked', 'rejected'] },
    client: {
      type: 'object',
      additionalProperties: true,
      description: '`{walletAddress}` or, for a directed identity, `{jwk}`.',
    },
    access: { type: 'array', items: { type: 'object', additionalProperties: true } },
    subject: {
      type: 'string',
      description: 'The wallet address the client asked the account holder to prove control of.',
    },
    walletAddressId: { ...uuid, description: 'The wallet address the grant’s access is for.' },
    createdAt: dateTime,
  },
} as const

const grantJson = (g: Grant) => ({
  id: g.id,
  state: g.state,
  ...(g.finalization && { finalization: g.finalization }),
  client: g.client,
  access: g.access,
  ...(g.subject !== undefined && { subject: g.subject }),
  ...(g.walletAddressId !== null && { walletAddressId: g.walletAddressId }),
  createdAt: g.createdAt.toISOString(),
})

const accessRequest = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'actions'],
  properties: {
    type: { type: 'string', enum: ['incoming-payment', 'outgoing-payment', 'quote'] },
    actions: { type: 'array', minItems: 1, items: { type: 'string' } },
    identifier: { type: 'string' },
  },
} as const

export function authAdminRoutes(app: FastifyInstance, { db }: Deps): void {
  app.post<{
    Body: {
      access_token: string
      access?: { type: never; actions: string[]; identifier?: string }[]
    }
  }>(
    '/introspect',
    {
      schema: {
        summary: 'Introspect an access token',
        description:
          'For a resource server running apart from the authorization server. Same contract as Rafiki’s token introspection: `{active: false}` or `{active: true, grant, access, client}` with only the granted items that cover the requested access.',
        tags: ['grants'],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['access_token'],
          properties: {
            access_token: { type: 'string', minLength: 1 },
            access: { type: 'array', items: accessRequest },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['active'],
            properties: {
              active: { type: 'boolean' },
              grant: uuid,
              access: { type: 'array', items: { type: 'object', additionalProperties: true } },
              client: { type: 'object', additionalProperties: true },
            },
          },
          400: errorResponse,
        },
      },
    },
    async (req) => introspect(db, req.body),
  )

  app.get<{ Params: { id: string } }>(
    '/wallet-addresses/:id/grants',
    {
      schema: {
        summary: 'List the grants for a wallet address, newest first (up to 100)',
        tags: ['grants'],
        params: idParams,
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: grantSchema } } },
          404: errorResponse,
        },
      },
    },
    async (req) => {
      if (!(await getWalletAddress(db, { id: req.params.id })))
        throw notFound('wallet address not found')
      return { items: (await listGrants(db, req.params.id)).map(grantJson) }
    },
  )

  app.get<{ Querystring: PageRequest & GrantFilter }>(
    '/grants',
    {
      schema: {
        summary: 'List grants, newest first',
        description:
          'Optionally of one wallet address, of one client (its wallet address URL), or in one state or finalization.',
        tags: ['grants'],
        querystring: listQuery({
          walletAddressId: uuid,
          client: { type: 'string', format: 'uri', maxLength: 2000 },
          state: { enum: ['pending', 'approved', 'finalized'] },
          finalization: { enum: ['issued', 'revoked', 'rejected'] },
        }),
        response: { 200: listOf(grantSchema) },
      },
    },
    async (req) => {
      const { first, cursor, ...filter } = req.query
      const page = await adminPage(
        { first, cursor },
        async (id) => (await findGrant(db, { id })) !== undefined,
        ({ cursorId, limit }) => listGrantsPage(db, { ...filter, afterId: cursorId, limit }),
      )
      return { items: page.items.map(grantJson), pagination: page.pagination }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/grants/:id',
    {
      schema: {
        summary: 'Get a grant',
        tags: ['grants'],
        params: idParams,
        response: { 200: grantSchema, 404: errorResponse },
      },
    },
    async (req) => {
      const grant = await findGrant(db, { id: req.params.id })
      if (!grant) throw notFound('grant not found')
      return grantJson(grant)
    },
  )

  app.post<{ Params: { id: string } }>(
    '/grants/:id/revoke',
    {
      schema: {
        summary: 'Revoke a grant and every access token it issued',
        description:
          'A grant already revoked or rejected is returned unchanged; a pending grant can no longer be approved.',
        tags: ['grants'],
        params: idParams,
        response: { 200: grantSchema, 404: errorResponse },
      },
    },
    async (req) => {
      const grant = await db.transaction().execute(async (trx) => {
        const g = await findGrant(trx, { id: req.params.id }, { forUpdate: true })
        if (g && !(g.state === 'finalized' && g.finalization !== 'issued'))
          await revokeGrant(trx, g.id)
        return g
      })
      if (!grant) throw notFound('grant not found')
      return grantJson((await findGrant(db, { id: grant.id }))!)
    },
  )
}
