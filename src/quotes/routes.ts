import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Deps } from '../deps.ts'
import { loadSpec, requestBodySchema } from '../http/openapi-specs.ts'
import { type IncomingFacts, incomingFacts } from '../incoming-payments/facts.ts'
import { getIncomingPaymentWithTokenGrant } from '../incoming-payments/service.ts'
import { badRequest, notFound } from '../lib/errors.ts'
import { type Amount, amountIn, toAmount } from '../resource-server/amounts.ts'
import {
  type AccessNeed,
  gnapToken,
  inactiveToken,
  tokenGrants,
} from '../resource-server/authorize.ts'
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
  type QuoteRequest,
  type QuoteSender,
  quoteFromFacts,
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
  const read = await readLocalReceiver(deps, id, receiver, gnapToken(req))
  localReceivers.set(req, { receiver: read.receiver })
  return { ...need, grant: read.grant ?? null }
}

/**
 * A local receiver and the token's grant, read in one statement; the receiver's facts are kept
 * while it is open, for the next quote to it (`incomingFacts`).
 */
export async function readLocalReceiver(
  deps: Deps,
  id: string,
  url: string,
  token: string | undefined,
) {
  const read = await getIncomingPaymentWithTokenGrant(deps.db, id, token)
  const receiver = localReceiver(url, read.payment)
  if (receiver) incomingFacts.remember(read.payment!)
  else incomingFacts.delete(id)
  return { receiver, grant: read.grant }
}

export async function quoteRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const { config, db } = deps
  const spec = await loadSpec('resource-server')
  const quotes = loadedResource<{ quote: Quote; sender: QuoteSender }>()
  const createAccess = onBodyWalletAddress('quote', 'create')
  const knownReceivers = loadedResource<IncomingFacts>()
  /** The kept facts of the local receiver of a quote of a fixed amount (not of what remains). */
  const knownReceiver = (body: CreateBody) => {
    if (!body.debitAmount && !body.receiveAmount) return undefined
    const id = localIncomingPaymentId(config.openPaymentsUrl, body.receiver)
    return id === undefined ? undefined : incomingFacts.get(id)
  }

  app.post<{ Body: CreateBody }>(
    '/quotes',
    {
      schema: { body: requestBodySchema(spec, '/quotes', 'post') },
      config: {
        access: async (req) => {
          const body = req.body as CreateBody
          const need = await createAccess(req)
          // A receiver whose facts are kept is not read: the quote's write checks it, and the
          // token's state when this process knows the token's grant.
          const facts = knownReceiver(body)
          if (facts) {
            knownReceivers.set(req, facts)
            return { ...need, writeChecksToken: true }
          }
          return withLocalReceiver(deps, req, need, body.receiver)
        },
      },
    },
    async (req, reply) => {
      const body = req.body
      const auth = req.auth!
      const wa = await requireWalletAddress(deps, body.walletAddress)
      const request: QuoteRequest = {
        walletAddress: wa,
        client: auth.clientId,
        receiver: body.receiver,
        debitAmount:
          body.debitAmount &&
          amountIn(body.debitAmount, { code: wa.assetCode, scale: wa.assetScale }),
        receiveAmount: body.receiveAmount && {
          ...body.receiveAmount,
          value: BigInt(body.receiveAmount.value),
        },
      }
      let resolved = localReceivers.find(req)
      const facts = knownReceivers.find(req)
      if (facts) {
        const quote = await quoteFromFacts(deps, request, facts, auth.tokenUnchecked)
        if (quote) return reply.code(201).send(quoteJson(config, quote, wa))
        // Not as kept, or the token not active: read both, as for any other receiver.
        const read = await readLocalReceiver(deps, facts.id, body.receiver, gnapToken(req))
        if (auth.tokenUnchecked !== undefined && !read.grant) {
          tokenGrants.delete(auth.tokenUnchecked)
          throw inactiveToken(config)
        }
        resolved = { receiver: read.receiver }
      }
      const quote = await createQuote(deps, { ...request, ...(resolved && { resolved }) })
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
