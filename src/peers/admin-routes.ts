import type { FastifyInstance } from 'fastify'
import { amount, dateTime, errorResponse, idParams, total, uuid } from '../admin/schemas.ts'
import type { Db } from '../db/database.ts'
import type { Deps } from '../deps.ts'
import { getAccount } from '../ledger/accounts.ts'
import { badRequest, conflict, notFound } from '../lib/errors.ts'
import {
  createPeer,
  deletePeer,
  getPeer,
  listPeers,
  type Peer,
  peerPosition,
  updatePeer,
} from './service.ts'

const ILP_ADDRESS = '^(g|private|example|peer|self|test[1-3]?|local)([.][a-zA-Z0-9_~-]+)+$'

const peerSchema = {
  type: 'object',
  required: [
    'id',
    'name',
    'assetCode',
    'assetScale',
    'ilpAddress',
    'routes',
    'httpEndpoint',
    'ledgerAccountId',
    'creditLimit',
    'balance',
    'createdAt',
  ],
  properties: {
    id: uuid,
    name: { type: 'string' },
    assetCode: { type: 'string' },
    assetScale: { type: 'integer' },
    ilpAddress: { type: 'string' },
    routes: { type: 'array', items: { type: 'string' } },
    httpEndpoint: { type: 'string' },
    maxPacketAmount: amount,
    ledgerAccountId: uuid,
    creditLimit: { ...total, description: 'How much the peer may owe us before settling.' },
    balance: {
      ...total,
      description:
        'Posted credits less debits of its account: positive when we owe the peer, negative when it owes us.',
    },
    createdAt: dateTime,
  },
} as const

// The outgoing token is a secret: it is never echoed back.
async function json(db: Db, p: Peer) {
  const account = (await getAccount(db, p.ledgerAccountId))!
  return {
    id: p.id,
    name: p.name,
    assetCode: p.assetCode,
    assetScale: p.assetScale,
    ilpAddress: p.ilpAddress,
    routes: p.routes,
    httpEndpoint: p.httpEndpoint,
    ...(p.maxPacketAmount !== null && { maxPacketAmount: p.maxPacketAmount.toString() }),
    ledgerAccountId: p.ledgerAccountId,
    creditLimit: (account.debitLimit ?? 0n).toString(),
    balance: (account.creditsPosted - account.debitsPosted).toString(),
    createdAt: p.createdAt.toISOString(),
  }
}

interface CreateBody {
  name: string
  assetCode: string
  assetScale: number
  ilpAddress: string
  routes?: string[]
  httpEndpoint: string
  outgoingToken: string
  incomingTokens: string[]
  maxPacketAmount?: string
  creditLimit?: string
}

export function peerAdminRoutes(app: FastifyInstance, { db }: Deps): void {
  app.post<{ Body: CreateBody }>(
    '/peers',
    {
      schema: {
        summary: 'Add an Interledger peer',
        description:
          'Another ASE we exchange ILP packets with over ILP-over-HTTP. Packets for addresses under its routes go to `httpEndpoint` with `Authorization: Bearer <outgoingToken>`; the peer authenticates to us with one of `incomingTokens` (stored hashed). `creditLimit`: how much the peer may owe us for money it sent before settling (default 0: it must prefund, see deposits).',
        tags: ['peers'],
        body: {
          type: 'object',
          additionalProperties: false,
          required: [
            'name',
            'assetCode',
            'assetScale',
            'ilpAddress',
            'httpEndpoint',
            'outgoingToken',
            'incomingTokens',
          ],
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
            assetCode: { type: 'string' },
            assetScale: { type: 'integer', minimum: 0, maximum: 255 },
            ilpAddress: { type: 'string', pattern: ILP_ADDRESS, maxLength: 1023 },
            routes: {
              type: 'array',
              minItems: 1,
              items: { type: 'string', pattern: ILP_ADDRESS, maxLength: 1023 },
            },
            httpEndpoint: { type: 'string', format: 'uri', pattern: '^https?://' },
            outgoingToken: { type: 'string', minLength: 16, maxLength: 500 },
            incomingTokens: {
              type: 'array',
              minItems: 1,
              items: { type: 'string', minLength: 16, maxLength: 500 },
            },
            maxPacketAmount: amount,
            creditLimit: amount,
          },
        },
        response: { 201: peerSchema, 400: errorResponse, 409: errorResponse },
      },
    },
    async (req, reply) => {
      const b = req.body
      const maxPacketAmount =
        b.maxPacketAmount === undefined ? undefined : BigInt(b.maxPacketAmount)
      if (maxPacketAmount === 0n)
        throw badRequest('body.maxPacketAmount must be greater than zero', {
          field: 'body.maxPacketAmount',
        })
      const peer = await createPeer(db, {
        ...b,
        maxPacketAmount,
        creditLimit: b.creditLimit === undefined ? undefined : BigInt(b.creditLimit),
      })
      if (peer === 'unknown_asset')
        throw badRequest(`unknown asset ${b.assetCode} with scale ${b.assetScale}`, {
          field: 'body.assetCode',
        })
      if (peer === 'duplicate')
        throw conflict('a peer with this name, incoming token or route exists')
      return reply.code(201).send(await json(db, peer))
    },
  )

  app.get(
    '/peers',
    {
      schema: {
        summary: 'List peers',
        tags: ['peers'],
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: peerSchema } } },
        },
      },
    },
    async () => ({
      items: await Promise.all((await listPeers(db)).map((p) => json(db, p))),
    }),
  )

  app.get<{ Params: { id: string } }>(
    '/peers/:id',
    {
      schema: {
        summary: 'Get a peer',
        tags: ['peers'],
        params: idParams,
        response: { 200: peerSchema, 404: errorResponse },
      },
    },
    async (req) => {
      const peer = await getPeer(db, { id: req.params.id })
      if (!peer) throw notFound('peer not found')
      return json(db, peer)
    },
  )

  app.get<{ Params: { id: string } }>(
    '/peers/:id/balance',
    {
      schema: {
        summary: 'Get where we stand with a peer',
        description:
          'From the peer’s ledger account, in its asset: `balance` is credits less debits posted, positive when we owe the peer (our customers paid through it) and negative when it owes us (it paid our customers); this is what the two ASEs settle. `pendingToPeer` and `pendingFromPeer` are forwarded packets still in flight.',
        tags: ['peers'],
        params: idParams,
        response: {
          200: {
            type: 'object',
            required: [
              'peerId',
              'assetCode',
              'assetScale',
              'balance',
              'pendingToPeer',
              'pendingFromPeer',
              'creditLimit',
            ],
            properties: {
              peerId: uuid,
              assetCode: { type: 'string' },
              assetScale: { type: 'integer' },
              balance: { type: 'string', pattern: '^-?(0|[1-9][0-9]*)$' },
              pendingToPeer: amount,
              pendingFromPeer: amount,
              creditLimit: amount,
            },
          },
          404: errorResponse,
        },
      },
    },
    async (req) => {
      const peer = await getPeer(db, { id: req.params.id })
      if (!peer) throw notFound('peer not found')
      const p = await peerPosition(db, peer)
      return {
        peerId: peer.id,
        assetCode: peer.assetCode,
        assetScale: peer.assetScale,
        balance: p.balance.toString(),
        pendingToPeer: p.pendingToPeer.toString(),
        pendingFromPeer: p.pendingFromPeer.toString(),
        creditLimit: p.creditLimit.toString(),
      }
    },
  )

  app.patch<{
    Params: { id: string }
    Body: {
      httpEndpoint?: string
      outgoingToken?: string
      maxPacketAmount?: string | null
      creditLimit?: string
    }
  }>(
    '/peers/:id',
    {
      schema: {
        summary: 'Update a peer',
        description:
          'Fields left out stay as they are. `creditLimit` may not go below what the peer owes now (debits posted and pending less credits posted on its account): such a patch is 409, with `details.owed`, and nothing of it is applied. To shrink a line the peer is using, wait until it settles.',
        tags: ['peers'],
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            httpEndpoint: { type: 'string', format: 'uri', pattern: '^https?://' },
            outgoingToken: { type: 'string', minLength: 16, maxLength: 500 },
            maxPacketAmount: { anyOf: [amount, { type: 'null' }] },
            creditLimit: amount,
          },
        },
        response: { 200: peerSchema, 400: errorResponse, 404: errorResponse, 409: errorResponse },
      },
    },
    async (req) => {
      const b = req.body
      if (b.maxPacketAmount === '0') {
        throw badRequest('body.maxPacketAmount must be greater than zero', {
          field: 'body.maxPacketAmount',
        })
      }
      const peer = await updatePeer(db, req.params.id, {
        httpEndpoint: b.httpEndpoint,
        outgoingToken: b.outgoingToken,
        maxPacketAmount:
          b.maxPacketAmount === undefined
            ? undefined
            : b.maxPacketAmount === null
              ? null
              : BigInt(b.maxPacketAmount),
        creditLimit: b.creditLimit === undefined ? undefined : BigInt(b.creditLimit),
      })
      if (!peer) throw notFound('peer not found')
      if ('error' in peer)
        throw conflict(
          `the peer owes ${peer.owed} now; its credit limit may not go below that (it was not changed, nor anything else)`,
          { field: 'body.creditLimit', owed: peer.owed.toString() },
        )
      return json(db, peer)
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/peers/:id',
    {
      schema: {
        summary: 'Remove a peer',
        tags: ['peers'],
        params: idParams,
        response: { 204: { type: 'null', description: 'Removed.' }, 404: errorResponse },
      },
    },
    async (req, reply) => {
      if (!(await deletePeer(db, req.params.id))) throw notFound('peer not found')
      return reply.code(204).send()
    },
  )
}
