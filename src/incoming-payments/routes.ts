import type { FastifyInstance } from 'fastify'
import type { Deps } from '../deps.ts'
import { loadSpec, requestBodySchema } from '../http/openapi-specs.ts'
import type { StreamReceiver } from '../ilp/stream-receiver.ts'
import { badRequest, HttpError, notFound } from '../lib/errors.ts'
import { type Amount, amountIn, toAmount } from '../resource-server/amounts.ts'
import { authorize } from '../resource-server/authorize.ts'
import { listQuerySchema, type PageQuery, paginate } from '../resource-server/pagination.ts'
import { findActiveByUrl } from '../wallet-addresses/service.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import {
  completeIncomingPayment,
  createIncomingPayment,
  getIncomingPayment,
  type IncomingPayment,
  incomingPaymentPages,
  isOpen,
} from './service.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

interface CreateBody {
  walletAddress: string
  incomingAmount?: Amount
  expiresAt?: string
  metadata?: Record<string, unknown>
}

export async function incomingPaymentRoutes(
  app: FastifyInstance,
  deps: Deps,
  stream: StreamReceiver,
): Promise<void> {
  const { config, db } = deps
  const settings = config.openPayments
  const spec = await loadSpec('resource-server')

  const json = (ip: IncomingPayment) => {
    const asset = { code: ip.assetCode, scale: ip.assetScale }
    return {
      id: `${config.openPaymentsUrl}/incoming-payments/${ip.id}`,
      walletAddress: walletAddressUrl(config, ip.walletAddressPath),
      completed: ip.completedAt !== null,
      ...(ip.incomingAmount !== null && { incomingAmount: toAmount(ip.incomingAmount, asset) }),
      receivedAmount: toAmount(ip.receivedAmount, asset),
      expiresAt: ip.expiresAt.toISOString(),
      ...(ip.metadata !== null && { metadata: ip.metadata }),
      createdAt: ip.createdAt.toISOString(),
    }
  }
  // Credentials are handed out only while the payment can still receive money.
  const withMethods = (ip: IncomingPayment) => ({
    ...json(ip),
    methods: isOpen(ip)
      ? [stream.credentials(ip.id, { code: ip.assetCode, scale: ip.assetScale })]
      : [],
  })

  const load = async (id: string) => {
    const ip = UUID.test(id) ? await getIncomingPayment(db, id) : undefined
    if (!ip) throw notFound('Incoming payment does not exist')
    return ip
  }

  app.post<{ Body: CreateBody }>(
    '/incoming-payments',
    { schema: { body: requestBodySchema(spec, '/incoming-payments', 'post') } },
    async (req, reply) => {
      const body = req.body
      const auth = await authorize(deps, req, {
        type: 'incoming-payment',
        action: 'create',
        identifier: body.walletAddress,
      })
      const wa = await findActiveByUrl(db, config, body.walletAddress)
      if (!wa) throw badRequest('unknown wallet address')
      const asset = { code: wa.assetCode, scale: wa.assetScale }
      const incomingAmount = body.incomingAmount && amountIn(body.incomingAmount, asset)
      const now = Date.now()
      const expiresAt = body.expiresAt
        ? new Date(body.expiresAt)
        : new Date(now + settings.incomingPaymentExpiryDefaultSeconds * 1000)
      if (
        expiresAt.getTime() <= now ||
        expiresAt.getTime() > now + settings.incomingPaymentExpiryMaxSeconds * 1000
      ) {
        throw badRequest('invalid expiresAt')
      }
      const ip = await createIncomingPayment(db, {
        walletAddressId: wa.id,
        client: auth.clientId,
        incomingAmount,
        expiresAt,
        metadata: body.metadata,
      })
      return reply.code(201).send(withMethods(ip))
    },
  )

  app.get<{ Querystring: PageQuery & { 'wallet-address': string } }>(
    '/incoming-payments',
    { schema: { querystring: listQuerySchema } },
    async (req) => {
      const url = req.query['wallet-address']
      const auth = await authorize(deps, req, {
        type: 'incoming-payment',
        action: 'list',
        identifier: url,
      })
      const wa = await findActiveByUrl(db, config, url)
      if (!wa) throw badRequest('unknown wallet address')
      const page = await paginate(
        req.query,
        async (id) =>
          UUID.test(id) && (await getIncomingPayment(db, id))?.walletAddressId === wa.id,
        incomingPaymentPages(db, {
          walletAddressId: wa.id,
          ...(!auth.all && { client: auth.clientId }),
        }),
      )
      return { pagination: page.pageInfo, result: page.items.map(json) }
    },
  )

  app.get<{ Params: { id: string } }>('/incoming-payments/:id', async (req) => {
    const ip = await load(req.params.id)
    const owner = walletAddressUrl(config, ip.walletAddressPath)
    // Without credentials anyone may see what was received, and where to ask for more.
    if (req.headers.authorization === undefined) {
      return { authServer: config.authServerUrl, receivedAmount: json(ip).receivedAmount }
    }
    const auth = await authorize(deps, req, {
      type: 'incoming-payment',
      action: 'read',
      identifier: owner,
    })
    if (!auth.all && ip.client !== auth.clientId) throw notFound('Incoming payment does not exist')
    return withMethods(ip)
  })

  app.post<{ Params: { id: string } }>('/incoming-payments/:id/complete', async (req) => {
    const ip = await load(req.params.id)
    const owner = walletAddressUrl(config, ip.walletAddressPath)
    await authorize(deps, req, { type: 'incoming-payment', action: 'complete', identifier: owner })
    const done = await completeIncomingPayment(db, ip.id)
    if (done === 'wrong_state') throw new HttpError(409, 'conflict', 'wrong state')
    return json(done)
  })
}
