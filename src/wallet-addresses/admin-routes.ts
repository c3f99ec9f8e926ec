import type { FastifyInstance } from 'fastify'
import { adminPage } from '../admin/paging.ts'
import { amount, errorResponse, idParams, pageInfo, pageQuery, uuid } from '../admin/schemas.ts'
import type { Deps } from '../deps.ts'
import { parseUint64 } from '../lib/amount.ts'
import { badRequest, conflict, HttpError, notFound } from '../lib/errors.ts'
import { type Balance, getBalance, type Movement, moveFunds } from './funds.ts'
import { addKey, listKeys, revokeKey, type WalletAddressKey } from './keys.ts'
import {
  createWalletAddress,
  getWalletAddress,
  listWalletAddresses,
  updateWalletAddress,
  type WalletAddress,
} from './service.ts'
import { walletAddressUrl } from './urls.ts'

const walletAddressSchema = {
  type: 'object',
  required: [
    'id',
    'url',
    'path',
    'assetId',
    'assetCode',
    'assetScale',
    'status',
    'ledgerAccountId',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: uuid,
    url: { type: 'string', description: 'The public wallet address URL.' },
    ledgerAccountId: { ...uuid, description: 'Its account in the ledger (see /ledger/accounts).' },
    path: { type: 'string' },
    assetId: uuid,
    assetCode: { type: 'string' },
    assetScale: { type: 'integer' },
    publicName: { type: 'string' },
    status: { type: 'string', enum: ['active', 'inactive'] },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const

const jwkSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['kid', 'kty', 'crv', 'x'],
  properties: {
    kid: { type: 'string', minLength: 1, maxLength: 200 },
    kty: { const: 'OKP' },
    crv: { const: 'Ed25519' },
    alg: { const: 'EdDSA' },
    use: { const: 'sig' },
    x: {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]{43}$',
      description: 'The 32-byte public key, base64url.',
    },
  },
} as const

const keySchema = {
  type: 'object',
  required: ['id', 'walletAddressId', 'jwk', 'createdAt'],
  properties: {
    id: uuid,
    walletAddressId: uuid,
    jwk: {
      type: 'object',
      required: ['kid', 'alg', 'kty', 'crv', 'x'],
      properties: {
        kid: { type: 'string' },
        alg: { type: 'string' },
        kty: { type: 'string' },
        crv: { type: 'string' },
        x: { type: 'string' },
      },
    },
    createdAt: { type: 'string', format: 'date-time' },
    revokedAt: { type: 'string', format: 'date-time' },
  },
} as const

const balanceSchema = {
  type: 'object',
  required: ['walletAddressId', 'assetCode', 'assetScale', 'balance', 'reserved', 'available'],
  properties: {
    walletAddressId: uuid,
    assetCode: { type: 'string' },
    assetScale: { type: 'integer' },
    balance: amount,
    reserved: amount,
    available: amount,
  },
} as const

const movementBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'amount'],
  properties: {
    id: {
      type: 'string',
      pattern: '^[A-Za-z0-9._:-]{1,100}$',
      description: 'Your reference for this movement; repeating it returns the first result.',
    },
    amount: { ...amount, description: 'Greater than zero.' },
  },
} as const

const movementSchema = {
  type: 'object',
  required: [
    'id',
    'walletAddressId',
    'kind',
    'amount',
    'assetCode',
    'assetScale',
    'createdAt',
    'balance',
  ],
  properties: {
    id: { type: 'string' },
    walletAddressId: uuid,
    kind: { type: 'string', enum: ['deposit', 'withdrawal'] },
    amount,
    assetCode: { type: 'string' },
    assetScale: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    balance: balanceSchema,
  },
} as const

type IdParams = { Params: { id: string } }

export function walletAddressAdminRoutes(
  app: FastifyInstance,
  { db, config, walletAddresses }: Deps,
): void {
  const toJson = (wa: WalletAddress) => ({
    id: wa.id,
    url: walletAddressUrl(config, wa.path),
    path: wa.path,
    assetId: wa.assetId,
    assetCode: wa.assetCode,
    assetScale: wa.assetScale,
    ...(wa.publicName !== null && { publicName: wa.publicName }),
    status: wa.status,
    ledgerAccountId: wa.ledgerAccountId,
    createdAt: wa.createdAt.toISOString(),
    updatedAt: wa.updatedAt.toISOString(),
  })
  const balanceJson = (wa: WalletAddress, b: Balance) => ({
    walletAddressId: wa.id,
    assetCode: wa.assetCode,
    assetScale: wa.assetScale,
    balance: b.balance.toString(),
    reserved: b.reserved.toString(),
    available: b.available.toString(),
  })
  const load = async (id: string) => {
    const wa = await getWalletAddress(db, { id })
    if (!wa) throw notFound('wallet address not found')
    return wa
  }

  app.post<{ Body: { path: string; assetCode: string; assetScale: number; publicName?: string } }>(
    '/wallet-addresses',
    {
      schema: {
        summary: 'Create a wallet address',
        tags: ['wallet addresses'],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['path', 'assetCode', 'assetScale'],
          properties: {
            path: {
              type: 'string',
              maxLength: 500,
              description:
                'URL path under OPEN_PAYMENTS_URL, e.g. `/alice`; `/` is the path-less address.',
            },
            assetCode: { type: 'string' },
            assetScale: { type: 'integer', minimum: 0, maximum: 255 },
            publicName: { type: 'string', minLength: 1, maxLength: 200 },
          },
        },
        response: { 201: walletAddressSchema, 400: errorResponse, 409: errorResponse },
      },
    },
    async (req, reply) => {
      if (req.body.path === config.openPayments.serverIdentity.path) {
        throw conflict(
          `${req.body.path} is the server's own wallet address (SERVER_WALLET_ADDRESS_PATH)`,
        )
      }
      const wa = await createWalletAddress(db, req.body)
      if (wa === 'invalid_path') {
        throw badRequest(
          'body.path must be "/" or "/" followed by segments of letters, digits and ._~- (not a reserved Open Payments path)',
          { field: 'body.path' },
        )
      }
      if (wa === 'unknown_asset') {
        throw badRequest(`unknown asset ${req.body.assetCode} with scale ${req.body.assetScale}`, {
          field: 'body.assetCode',
        })
      }
      if (wa === 'duplicate_path')
        throw conflict(`a wallet address with path ${req.body.path} exists`)
      return reply.code(201).send(toJson(wa))
    },
  )

  app.get<{ Querystring: { first: number; cursor?: string } }>(
    '/wallet-addresses',
    {
      schema: {
        summary: 'List wallet addresses, oldest first',
        tags: ['wallet addresses'],
        querystring: pageQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              items: { type: 'array', items: walletAddressSchema },
              pagination: pageInfo,
            },
          },
        },
      },
    },
    async (req) => {
      const page = await adminPage(
        req.query,
        async (id) => (await getWalletAddress(db, { id })) !== undefined,
        async ({ cursorId, limit }) =>
          (await listWalletAddresses(db, { first: limit, after: cursorId })).items,
      )
      return { items: page.items.map(toJson), pagination: page.pagination }
    },
  )

  app.get<IdParams>(
    '/wallet-addresses/:id',
    {
      schema: {
        summary: 'Get a wallet address',
        tags: ['wallet addresses'],
        params: idParams,
        response: { 200: walletAddressSchema, 404: errorResponse },
      },
    },
    async (req) => toJson(await load(req.params.id)),
  )

  app.patch<IdParams & { Body: { publicName?: string | null; status?: 'active' | 'inactive' } }>(
    '/wallet-addresses/:id',
    {
      schema: {
        summary: 'Update a wallet address’s public name or status',
        description: 'An inactive wallet address answers 404 publicly.',
        tags: ['wallet addresses'],
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            publicName: { type: ['string', 'null'], minLength: 1, maxLength: 200 },
            status: { type: 'string', enum: ['active', 'inactive'] },
          },
        },
        response: { 200: walletAddressSchema, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      const wa = await updateWalletAddress(db, req.params.id, req.body)
      walletAddresses.invalidate()
      if (!wa) throw notFound('wallet address not found')
      return toJson(wa)
    },
  )

  const keyJson = (k: WalletAddressKey) => ({
    id: k.id,
    walletAddressId: k.walletAddressId,
    jwk: k.jwk,
    createdAt: k.createdAt.toISOString(),
    ...(k.revokedAt && { revokedAt: k.revokedAt.toISOString() }),
  })

  app.post<IdParams & { Body: { jwk: { kid: string; x: string } } }>(
    '/wallet-addresses/:id/keys',
    {
      schema: {
        summary: 'Add an Ed25519 public key (JWK) to a wallet address',
        tags: ['keys'],
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['jwk'],
          properties: { jwk: jwkSchema },
        },
        response: { 201: keySchema, 400: errorResponse, 404: errorResponse, 409: errorResponse },
      },
    },
    async (req, reply) => {
      const wa = await load(req.params.id)
      const key = await addKey(db, wa.id, req.body.jwk)
      walletAddresses.invalidate()
      if (key === 'invalid_key')
        throw badRequest('body.jwk.x is not an Ed25519 public key', { field: 'body.jwk.x' })
      if (key === 'duplicate_kid')
        throw conflict(`kid ${req.body.jwk.kid} is already used by this wallet address`)
      return reply.code(201).send(keyJson(key))
    },
  )

  app.get<IdParams>(
    '/wallet-addresses/:id/keys',
    {
      schema: {
        summary: 'List a wallet address’s keys, revoked ones included',
        tags: ['keys'],
        params: idParams,
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: keySchema } } },
        },
      },
    },
    async (req) => {
      const wa = await load(req.params.id)
      return { items: (await listKeys(db, wa.id, { includeRevoked: true })).map(keyJson) }
    },
  )

  app.delete<{ Params: { id: string; keyId: string } }>(
    '/wallet-addresses/:id/keys/:keyId',
    {
      schema: {
        summary: 'Revoke a key',
        description:
          'The key leaves the public JWKS at once (subject to its Cache-Control). This process refuses signatures made with it at once, other processes of the deployment within 5 seconds (their key cache).',
        tags: ['keys'],
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'keyId'],
          properties: { id: uuid, keyId: uuid },
        },
        response: { 200: keySchema, 404: errorResponse },
      },
    },
    async (req) => {
      const key = await revokeKey(db, req.params.id, req.params.keyId)
      walletAddresses.invalidate()
      if (!key) throw notFound('key not found')
      return keyJson(key)
    },
  )

  app.get<IdParams>(
    '/wallet-addresses/:id/balance',
    {
      schema: {
        summary: 'Get a wallet address’s balance',
        tags: ['funds'],
        params: idParams,
        response: { 200: balanceSchema, 404: errorResponse },
      },
    },
    async (req) => {
      const wa = await load(req.params.id)
      return balanceJson(wa, await getBalance(db, wa))
    },
  )

  for (const kind of ['deposit', 'withdrawal'] as const) {
    app.post<IdParams & { Body: { id: string; amount: string } }>(
      `/wallet-addresses/:id/${kind}s`,
      {
        schema: {
          summary:
            kind === 'deposit' ? 'Deposit into a wallet address' : 'Withdraw from a wallet address',
          description:
            'Idempotent by `id`: repeating a call returns the first result with status 200. ' +
            (kind === 'withdrawal'
              ? 'A withdrawal beyond the available balance moves nothing (422).'
              : ''),
          tags: ['funds'],
          params: idParams,
          body: movementBody,
          response: {
            200: movementSchema,
            201: movementSchema,
            400: errorResponse,
            404: errorResponse,
            409: errorResponse,
            422: errorResponse,
          },
        },
      },
      async (req, reply) => {
        const wa = await load(req.params.id)
        const value = parseUint64(req.body.amount)
        if (value === 0n)
          throw badRequest('body.amount must be greater than zero', { field: 'body.amount' })
        const result = await moveFunds(db, wa, { kind, id: req.body.id, amount: value })
        if (result === 'insufficient_balance') {
          throw new HttpError(
            422,
            'insufficient_balance',
            'the available balance does not cover this withdrawal',
          )
        }
        if (result === 'id_reused_with_different_amount') {
          throw conflict(`${kind} ${req.body.id} exists with a different amount`)
        }
        return reply
          .code(result.replayed ? 200 : 201)
          .send(movementJson(wa, result, await getBalance(db, wa)))
      },
    )
  }

  const movementJson = (wa: WalletAddress, m: Movement, b: Balance) => ({
    id: m.id,
    walletAddressId: wa.id,
    kind: m.kind,
    amount: m.amount.toString(),
    assetCode: wa.assetCode,
    assetScale: wa.assetScale,
    createdAt: m.createdAt.toISOString(),
    balance: balanceJson(wa, b),
  })
}
