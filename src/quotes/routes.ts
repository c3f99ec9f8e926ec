import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Deps } from '../deps.ts'
import { loadSpec, requestBodySchema } from '../http/openapi-specs.ts'
import { getIncomingPaymentWithTokenGrant } from '../incoming-payments/service.ts'
import { badRequest, notFound } from '../lib/errors.ts'
import { type Amount, amountIn, toAmount } from '../resource-server/amounts.ts'
import { type AccessNeed, gnapToken } from '../resource-server/authorize.ts'
import {
  isUuid,
  loadedResource,
  onBodyWalletAddress,
  requireWalletAddress,
} from '../resource-server/resources.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import { localIncomingPaymentId, localReceiver, type Receiver } from './receiver.ts'
import {
  createQuote,
  getQuoteWithTokenGrant,
  type Quote,
  type QuoteError,
  type QuoteRefusal,
  type QuoteSender,
} from './service.ts'

interface CreateBody {
  walletAddress: string
  receiver: string
  method: 'ilp'
  debitAmount?: Amount
  receiveAmount?: Amount
}

/** Quote failures in the words ecosystem clients match on (contract section 10). */
export const QUOTE_ERRORS: Record<QuoteError, string> = {
  invalid_receiver: 'invalid receiver',
  invalid_amount: 'invalid amount',
  no_amount: 'invalid amount: no amount was provided and none can be inferred from the receiver',
  non_positive: 'non-positive receive amount',
  no_rate: 'could not convert between assets',
}

/** A refusal as the client sees it; a fixed send too small says what would be enough. */
export function quoteRefused(r: QuoteRefusal) {
  return typeof r === 'string'
    ? badRequest(QUOTE_ERRORS[r])
    : badRequest(QUOTE_ERRORS[r.error], { minSendAmount: r.minSendAmount.toString() })
}

/** The receivers the access checks below read, for the handlers of the same requests. */
export const localReceivers = loadedResource<{ receiver: Receiver | undefined }>()

/**
 * The access check of a request quoting to `receiver`: a receiver of this server is read with the
 * token's grant in one statement (the introspection rides in the read) and kept for the handler
 * (`localReceivers`); for any other the need is left as it is.
 */
export async function withLocalReceiver(
  deps: Deps,
  req: FastifyRequest,
  need: AccessNeed,
  receiver: string,
): Promise<AccessNeed> {
  const id = localIncomingPaymentId(deps.config.openPaymentsUrl, receiver)
  if (id === undefined) return need
  const read = await getIncomingPaymentWithTokenGrant(deps.db, id, gnapToken(req))
  localReceivers.set(req, { receiver: localReceiver(receiver, read.payment) })
  return { ...need, grant: read.grant ?? null }
}

export async function quoteRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const { config, db } = deps
  const spec = await loadSpec('resource-server')
  const quotes = loadedResource<{ quote: Quote; sender: QuoteSender }>()
  const createAccess = onBodyWalletAddress('quote', 'create')

  app.post<{ Body: CreateBody }>(
    '/quotes',
    {
      schema: { body: requestBodySchema(spec, '/quotes', 'post') },
      config: {
        access: async (req) =>
          withLocalReceiver(deps, req, await createAccess(req), (req.body as CreateBody).receiver),
      },
    },
    async (req, reply) => {
      const body = req.body
      const wa = await requireWalletAddress(deps, body.walletAddress)
      const quote = await createQuote(deps, {
        walletAddress: wa,
        client: req.auth!.clientId,
        receiver: body.receiver,
        resolved: localReceivers.find(req),
        debitAmount:
          body.debitAmount &&
          amountIn(body.debitAmount, { code: wa.assetCode, scale: wa.assetScale }),
        receiveAmount: body.receiveAmount && {
          ...body.receiveAmount,
          value: BigInt(body.receiveAmount.value),
        },
      })
      if (typeof quote === 'string' || 'error' in quote) throw quoteRefused(quote)
      return reply.code(201).send(quoteJson(config, quote, wa))
    },
  )

  app.get<{ Params: { id: string } }>(
    '/quotes/:id',
    {
      config: {
        access: async (req) => {
          const { id } = req.params as { id: string }
          // One read: the quote, its sender and the token's grant (the introspection).
          const read = isUuid(id) ? await getQuoteWithTokenGrant(db, id, gnapToken(req)) : undefined
          if (!read) throw notFound('Quote does not exist')
          quotes.set(req, read)
          return {
            type: 'quote',
            action: 'read',
            identifier: walletAddressUrl(config, read.sender.path),
            grant: read.grant ?? null,
          }
        },
      },
    },
    async (req) => {
      const { quote, sender } = quotes.get(req)
      if (!req.auth!.all && quote.client !== req.auth!.clientId)
        throw notFound('Quote does not exist')
      return quoteJson(config, quote, sender)
    },
  )
}

export function quoteJson(config: Deps['config'], q: Quote, sender: QuoteSender) {
  return {
    id: `${config.openPaymentsUrl}/quotes/${q.id}`,
    walletAddress: walletAddressUrl(config, sender.path),
    receiver: q.receiver,
    receiveAmount: toAmount(q.receiveAmount, q.receiveAsset),
    debitAmount: toAmount(q.debitAmount, { code: sender.assetCode, scale: sender.assetScale }),
    method: 'ilp' as const,
    expiresAt: q.expiresAt.toISOString(),
    createdAt: q.createdAt.toISOString(),
  }
}
