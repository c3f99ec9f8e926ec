import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Deps } from '../deps.ts'
import { loadSpec, requestBodySchema } from '../http/openapi-specs.ts'
import { incomingFacts } from '../incoming-payments/facts.ts'
import { HttpError, notFound } from '../lib/errors.ts'
import { hashToken } from '../lib/secrets.ts'
import { localIncomingPaymentId, receiverFromFacts } from '../quotes/receiver.ts'
import {
  localReceivers,
  quoteRefused,
  readLocalReceiver,
  withLocalReceiver,
} from '../quotes/routes.ts'
import { priceQuote } from '../quotes/service.ts'
import { type Amount, amountIn, toAmount } from '../resource-server/amounts.ts'
import { gnapToken, inactiveToken, tokenGrants, tokenKnown } from '../resource-server/authorize.ts'
import { listQuerySchema, type PageQuery, paginate } from '../resource-server/pagination.ts'
import {
  isUuid,
  loadedResource,
  onBodyWalletAddress,
  onQueryWalletAddress,
  requireWalletAddress,
} from '../resource-server/resources.ts'
import { getWalletAddress, type WalletAddress } from '../wallet-addresses/service.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import { spentUnderGrant } from './limits.ts'
import { outgoingPaymentJson } from './serialize.ts'
import {
  type Created,
  type CreateError,
  createOutgoingPayment,
  getOutgoingPayment,
  type OutgoingPayment,
  outgoingPaymentPages,
  readQuoteForPayment,
  type StoredQuote,
} from './service.ts'
import type { UnreadQuote, UnreadReceiver } from './settle-at-create.ts'
import type { PaymentWorker } from './worker.ts'

interface CreateBody {
  walletAddress: string
  quoteId?: string
  incomingPayment?: string
  debitAmount?: Amount
  metadata?: Record<string, unknown>
}

const CREATE_ERRORS: Record<CreateError, HttpError> = {
  unknown_quote: new HttpError(404, 'not_found', 'unknown quote'),
  invalid_quote: new HttpError(400, 'invalid_request', 'invalid quote'),
  // Clients match this exact word for "grant limit reached" (contract section 10).
  unauthorized: new HttpError(403, 'forbidden', 'unauthorized'),
  insufficient_balance: new HttpError(400, 'invalid_request', 'insufficient balance'),
  // Nothing was reserved; the client may try again (docs/core-banking.md).
  core_banking_unavailable: new HttpError(
    503,
    'service_unavailable',
    'payment could not be approved now, try again later',
    undefined,
    { 'retry-after': '5' },
  ),
}

export async function outgoingPaymentRoutes(
  app: FastifyInstance,
  deps: Deps,
  worker: PaymentWorker | undefined,
): Promise<void> {
  const { config, db } = deps
  const spec = await loadSpec('resource-server')
  const payments = loadedResource<{ payment: OutgoingPayment; sender: WalletAddress }>()
  const quotes = loadedResource<{ stored: StoredQuote | undefined } | { unread: UnreadQuote }>()
  /** The id of a quote of this server named by its URL; undefined for anything else. */
  const localQuoteId = (url: string) => {
    const m = /\/quotes\/([^/]+)\/?$/.exec(url)
    return m?.[1] && isUuid(m[1]) && url.startsWith(`${config.openPaymentsUrl}/`) ? m[1] : undefined
  }

  const keptReceivers = loadedResource<UnreadReceiver>()
  /** The kept facts of a local receiver, when the request's token is known and this process settles. */
  const keptReceiver = (req: FastifyRequest, url: string): UnreadReceiver | undefined => {
    if (!config.roles.includes('workers')) return undefined
    const id = localIncomingPaymentId(config.openPaymentsUrl, url)
    const facts = id === undefined ? undefined : incomingFacts.get(id)
    const token = facts && gnapToken(req)
    const tokenHash = token === undefined ? undefined : hashToken(token)
    return tokenHash !== undefined && tokenKnown(req, tokenHash)
      ? { facts: facts!, tokenHash }
      : undefined
  }

  const json = (p: OutgoingPayment, sender: WalletAddress) => outgoingPaymentJson(config, p, sender)
  const senderOf = async (p: OutgoingPayment) =>
    (await getWalletAddress(db, { id: p.walletAddressId }))!

  app.post<{ Body: CreateBody }>(
    '/outgoing-payments',
    {
      schema: { body: requestBodySchema(spec, '/outgoing-payments', 'post') },
      config: {
        access: async (req) => {
          const body = req.body as CreateBody
          const need = await onBodyWalletAddress('outgoing-payment', 'create')(req)
          if (body.quoteId === undefined) {
            // Straight from an incoming payment: a local one whose facts are kept, by a token this
            // process knows, is not read (the payment's settlement checks both); any other local
            // one is read with the token's grant.
            const kept = keptReceiver(req, body.incomingPayment!)
            if (!kept) return withLocalReceiver(deps, req, need, body.incomingPayment!)
            keptReceivers.set(req, kept)
            return { ...need, writeChecksToken: true }
          }
          const id = localQuoteId(body.quoteId)
          if (id === undefined) return need
          // A token this process knows: the quote is read by the create itself, which checks the
          // token then (settlement at create's first statement, or a read with the token's check).
          const token = gnapToken(req)
          const tokenHash = token === undefined ? undefined : hashToken(token)
          if (tokenHash !== undefined && tokenKnown(req, tokenHash)) {
            quotes.set(req, { unread: { id, tokenHash } })
            return { ...need, writeChecksToken: true }
          }
          // One read: the quote and the token's grant (the introspection), which the process
          // then keeps for the token's next create.
          const read = await readQuoteForPayment(db, id, tokenHash)
          quotes.set(req, { stored: read.quote })
          return { ...need, grant: read.grant ?? null, writeChecksToken: true }
        },
      },
    },
    async (req, reply) => {
      const body = req.body
      const auth = req.auth!
      const wa = await requireWalletAddress(deps, body.walletAddress)
      const input = {
        walletAddress: wa,
        client: auth.clientId,
        grantId: auth.grantId,
        limits: auth.item.limits,
        metadata: body.metadata,
        // Only a process that settles payments settles them at create.
        settleLocally: config.roles.includes('workers'),
      }
      let created: Created | CreateError | 'inactive_token' | 'read_receiver'
      if (body.quoteId !== undefined) {
        const stored = quotes.find(req)
        if (!stored) throw CREATE_ERRORS.unknown_quote
        created = await createOutgoingPayment(deps, { ...input, quote: stored })
      } else {
        // Straight from an incoming payment: a fixed-send quote made on the spot, stored with
        // the payment; priced from the receiver's kept facts when the access check left it unread.
        const request = {
          walletAddress: wa,
          client: auth.clientId,
          receiver: body.incomingPayment!,
          debitAmount: amountIn(body.debitAmount!, { code: wa.assetCode, scale: wa.assetScale }),
        }
        const kept = keptReceivers.find(req)
        const asKept = kept && receiverFromFacts(request.receiver, kept.facts)
        const fromFacts =
          asKept && (await priceQuote(deps, { ...request, resolved: { receiver: asKept } }))
        created =
          fromFacts && typeof fromFacts !== 'string' && !('error' in fromFacts)
            ? await createOutgoingPayment(deps, {
                ...input,
                quote: { fromFacts, receiver: kept! },
              })
            : 'read_receiver'
        if (created === 'read_receiver') {
          // Read, with the token's grant, when the facts did not do (as for a token not known).
          let resolved = localReceivers.find(req)
          if (kept) {
            const read = await readLocalReceiver(
              deps,
              kept.facts.id,
              request.receiver,
              gnapToken(req),
            )
            if (!read.grant) {
              tokenGrants.delete(kept.tokenHash)
              throw inactiveToken(config)
            }
            resolved = { receiver: read.receiver }
          }
          const made = await priceQuote(deps, { ...request, resolved })
          if (typeof made === 'string' || 'error' in made) throw quoteRefused(made)
          created = await createOutgoingPayment(deps, { ...input, quote: { priced: made } })
        }
      }
      if (created === 'inactive_token') {
        // Known to the process until now: forgotten, so that its next request reads it.
        const stored = quotes.find(req)
        const unread = stored && 'unread' in stored ? stored.unread : keptReceivers.find(req)
        if (unread) tokenGrants.delete(unread.tokenHash)
        throw inactiveToken(config)
      }
      if (typeof created === 'string') throw CREATE_ERRORS[created]
      const { metrics } = deps
      metrics.outgoingCreated.inc()
      if (created.payment.state === 'sending') {
        // A local receiver's is settled now, beside the worker's loop; one paid over Interledger
        // is the loop's, woken (trying to settle it here would cost a transaction that finds none).
        if (localIncomingPaymentId(config.openPaymentsUrl, created.payment.receiver) !== undefined)
          worker?.settle(created.payment.id)
        else worker?.kick()
      } else if (created.payment.state === 'completed') {
        // Settled in the create's transaction, which has committed.
        metrics.outgoingCompleted.inc()
        metrics.outgoingCompletionSeconds.observe(
          (Date.now() - created.payment.createdAt.getTime()) / 1000,
        )
        if (created.receiverCompleted) metrics.incomingCompleted.inc()
      }
      const debitAsset = { code: wa.assetCode, scale: wa.assetScale }
      return reply.code(201).send({
        ...json(created.payment, wa),
        grantSpentDebitAmount: toAmount(created.spent.debit, debitAsset),
        grantSpentReceiveAmount: toAmount(created.spent.receive, created.spent.receiveAsset),
      })
    },
  )

  app.get<{ Querystring: PageQuery & { 'wallet-address': string } }>(
    '/outgoing-payments',
    {
      schema: { querystring: listQuerySchema },
      config: {
        access: onQueryWalletAddress('outgoing-payment'),
      },
    },
    async (req) => {
      const wa = await requireWalletAddress(deps, req.query['wallet-address'])
      const auth = req.auth!
      const page = await paginate(
        req.query,
        async (id) => isUuid(id) && (await getOutgoingPayment(db, id))?.walletAddressId === wa.id,
        outgoingPaymentPages(db, {
          walletAddressId: wa.id,
          ...(!auth.all && { client: auth.clientId }),
        }),
      )
      return { pagination: page.pageInfo, result: page.items.map((p) => json(p, wa)) }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/outgoing-payments/:id',
    {
      config: {
        access: async (req) => {
          const { id } = req.params as { id: string }
          const p = isUuid(id) ? await getOutgoingPayment(db, id) : undefined
          if (!p) throw notFound('Outgoing payment does not exist')
          const sender = await senderOf(p)
          payments.set(req, { payment: p, sender })
          return {
            type: 'outgoing-payment',
            action: 'read',
            identifier: walletAddressUrl(config, sender.path),
          }
        },
      },
    },
    async (req) => {
      const { payment, sender } = payments.get(req)
      if (!req.auth!.all && payment.client !== req.auth!.clientId) {
        throw notFound('Outgoing payment does not exist')
      }
      return json(payment, sender)
    },
  )

  app.get(
    '/outgoing-payment-grant',
    { config: { access: async () => ({ type: 'outgoing-payment', action: 'create' }) } },
    async (req) => {
      const auth = req.auth!
      const spent = await spentUnderGrant(db, auth.grantId, auth.item.limits, new Date())
      return {
        spentDebitAmount: spent ? toAmount(spent.debit, spent.debitAsset) : null,
        spentReceiveAmount: spent ? toAmount(spent.receive, spent.receiveAsset) : null,
      }
    },
  )
}
