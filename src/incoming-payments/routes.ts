import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Deps } from '../deps.ts'
import { loadSpec, requestBodySchema } from '../http/openapi-specs.ts'
import type { StreamReceiver } from '../ilp/stream-receiver.ts'
import { badRequest, HttpError, notFound } from '../lib/errors.ts'
import { type Amount, amountIn } from '../resource-server/amounts.ts'
import { gnapToken, inactiveToken, tokenGrants } from '../resource-server/authorize.ts'
import { listQuerySchema, type PageQuery, paginate } from '../resource-server/pagination.ts'
import {
  isUuid,
  loadedResource,
  onBodyWalletAddress,
  onQueryWalletAddress,
  requireWalletAddress,
} from '../resource-server/resources.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import { incomingFacts } from './facts.ts'
import { incomingPaymentJson } from './serialize.ts'
import {
  completeIncomingPayment,
  createIncomingPayment,
  getIncomingPayment,
  getIncomingPaymentWithTokenGrant,
  type IncomingPayment,
  incomingPaymentPages,
  isOpen,
} from './service.ts'

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

  const json = (ip: IncomingPayment) => incomingPaymentJson(config, ip)
  // Credentials are handed out only while the payment can still receive money.
  const withMethods = (ip: IncomingPayment) => ({
    ...json(ip),
    methods: isOpen(ip)
      ? [stream.credentials(ip.id, { code: ip.assetCode, scale: ip.assetScale })]
      : [],
  })

  const payments = loadedResource<IncomingPayment>()
  const existing = (ip: IncomingPayment | undefined) => {
    if (!ip) throw notFound('Incoming payment does not exist')
    return ip
  }
  /** Loads the payment named in the path; its owner is the identifier the token must cover. */
  const ownerAccess = (action: string) => async (req: FastifyRequest) => {
    const { id } = req.params as { id: string }
    if (!isUuid(id)) throw notFound('Incoming payment does not exist')
    // Without credentials anyone may read the public view.
    if (action === 'read' && req.headers.authorization === undefined) {
      payments.set(req, existing(await getIncomingPayment(db, id)))
      return undefined
    }
    // One read: the payment and the token's grant (the introspection).
    const read = await getIncomingPaymentWithTokenGrant(db, id, gnapToken(req))
    const ip = payments.set(req, existing(read.payment))
    return {
      type: 'incoming-payment' as const,
      action,
      identifier: walletAddressUrl(config, ip.walletAddressPath),
      grant: read.grant ?? null,
    }
  }

  app.post<{ Body: CreateBody }>(
    '/incoming-payments',
    {
      schema: { body: requestBodySchema(spec, '/incoming-payments', 'post') },
      config: {
        // The payment's write checks the token's state: a token this process knows is not read.
        access: async (req) => ({
          ...(await onBodyWalletAddress('incoming-payment', 'create')(req)),
          writeChecksToken: true,
        }),
      },
    },
    async (req, reply) => {
      const body = req.body
      const wa = await requireWalletAddress(deps, body.walletAddress)
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
      const auth = req.auth!
      const ip = await createIncomingPayment(db, {
        walletAddress: wa,
        client: auth.clientId,
        incomingAmount,
        expiresAt,
        metadata: body.metadata,
        ...(auth.tokenUnchecked !== undefined && { tokenUnchecked: auth.tokenUnchecked }),
      })
      if (ip === 'inactive_token') {
        tokenGrants.delete(auth.tokenUnchecked!)
        throw inactiveToken(config)
      }
      // For quotes to it, which are then priced without reading it.
      incomingFacts.remember(ip)
      return reply.code(201).send(withMethods(ip))
    },
  )

  app.get<{ Querystring: PageQuery & { 'wallet-address': string } }>(
    '/incoming-payments',
    {
      schema: { querystring: listQuerySchema },
      config: {
        access: onQueryWalletAddress('incoming-payment'),
      },
    },
    async (req) => {
      const auth = req.auth!
      const wa = await requireWalletAddress(deps, req.query['wallet-address'])
      const page = await paginate(
        req.query,
        async (id) => isUuid(id) && (await getIncomingPayment(db, id))?.walletAddressId === wa.id,
        incomingPaymentPages(db, {
          walletAddressId: wa.id,
          ...(!auth.all && { client: auth.clientId }),
        }),
      )
      return { pagination: page.pageInfo, result: page.items.map(json) }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/incoming-payments/:id',
    { config: { access: ownerAccess('read') } },
    async (req) => {
      const ip = payments.get(req)
      // Without credentials anyone may see what was received, and where to ask for more.
      if (!req.auth)
        return { authServer: config.authServerUrl, receivedAmount: json(ip).receivedAmount }
      if (!req.auth.all && ip.client !== req.auth.clientId) {
        throw notFound('Incoming payment does not exist')
      }
      return withMethods(ip)
    },
  )

  app.post<{ Params: { id: string } }>(
    '/incoming-payments/:id/complete',
    { config: { access: ownerAccess('complete') } },
    async (req) => {
      const ip = payments.get(req)
      // Only the client that created it may close it: there is no `complete-all`, and a grant to
      // complete needs no consent, so another client's would let anyone stop a receiver's payments.
      if (ip.client !== req.auth!.clientId) throw notFound('Incoming payment does not exist')
      const done = await completeIncomingPayment(db, ip.id)
      if (done === 'wrong_state') throw new HttpError(409, 'conflict', 'wrong state')
      deps.metrics.incomingCompleted.inc()
      return json(done)
    },
  )
}
