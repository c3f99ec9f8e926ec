import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { OutgoingPaymentState } from '../../db/schema.ts'
import type { Deps } from '../../deps.ts'
import {
  getIncomingPayment,
  type IncomingPaymentState,
  incomingPaymentPages,
} from '../../incoming-payments/service.ts'
import { HttpError } from '../../lib/errors.ts'
import type { SafeHtml } from '../../lib/html.ts'
import { getOutgoingPayment, outgoingPaymentPages } from '../../outgoing-payments/service.ts'
import { getWalletAddress, listWalletAddresses } from '../../wallet-addresses/service.ts'
import { walletAddressUrl } from '../../wallet-addresses/urls.ts'
import {
  getDelivery,
  getEvent,
  listDeliveries,
  replayDeadLetters,
  replayEvent,
} from '../../webhooks/deliveries.ts'
import { getEndpoint, listEndpoints } from '../../webhooks/endpoints.ts'
import { renderPayload } from '../../webhooks/payload.ts'
import { queueDepth } from '../../webhooks/queue.ts'
import { adminPage } from '../paging.ts'
import { consoleData } from './data.ts'
import { consolePath, form, idParams, uuid } from './forms.ts'
import type { Section } from './layout.ts'
import {
  deliveryView,
  INCOMING_STATES,
  incomingPaymentsView,
  incomingPaymentView,
  OUTGOING_STATES,
  outgoingPaymentsView,
  outgoingPaymentView,
  overviewView,
  paymentsHref,
  walletAddressesView,
  webhooksView,
} from './views.ts'

/** What the signed-in pages get from the console's plugin. */
export interface PageKit {
  deps: Deps
  /** A signed-in page with the console's header, navigation and the session's CSRF token. */
  render(
    req: FastifyRequest,
    reply: FastifyReply,
    section: Section,
    title: string,
    body: SafeHtml,
  ): FastifyReply
  /** A page with a title and one sentence: errors, refusals. */
  message(reply: FastifyReply, status: number, title: string, text: string): FastifyReply
  /** The session's CSRF token, for a view's forms. */
  csrf(req: FastifyRequest): string
}

const PAGE_SIZE = 25

const notice = {
  notice: { enum: ['replayed', 'endpoint-gone'] },
  count: { type: 'integer', minimum: 0 },
}

/** A console path with a notice for the page to show (a fixed message, never text from the URL). */
const withNotice = (path: string, notice: string, count?: number) => {
  const url = new URL(path, 'http://console')
  url.searchParams.set('notice', notice)
  url.searchParams.delete('count')
  if (count !== undefined) url.searchParams.set('count', String(count))
  return url.pathname + url.search
}

const noticeText = (q: { notice?: string; count?: number }) => {
  if (q.notice === 'replayed')
    return q.count === 0
      ? 'Nothing to replay: there were no dead letters.'
      : `Replayed ${q.count} ${q.count === 1 ? 'delivery' : 'deliveries'}: queued to be sent now.`
  if (q.notice === 'endpoint-gone')
    return 'Not replayed: the endpoint of that delivery has been deleted.'
  return undefined
}

const nextHref = (base: string, query: Record<string, string | undefined>, cursor?: string) => {
  if (!cursor) return undefined
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, v)
  q.set('cursor', cursor)
  return `${base}?${q}`
}

/**
 * The console's pages (overview, wallet addresses, payments, webhooks) and its actions (replay).
 * Registered inside the console's plugin, whose hooks have checked the session (and, for a POST,
 * the CSRF token) before any handler here runs.
 */
export function pageRoutes(c: FastifyInstance, kit: PageKit): void {
  const { config, db } = kit.deps
  const { render, message } = kit
  const signedIn = { console: true }
  const data = consoleData(kit.deps)

  c.get<{ Querystring: { days: number; asset?: string; notice?: string; count?: number } }>(
    '/',
    {
      config: signedIn,
      schema: {
        querystring: {
          type: 'object',
          properties: {
            days: { type: 'integer', enum: [7, 14, 30, 90], default: 14 },
            asset: uuid,
            ...notice,
          },
        },
      },
    },
    async (req, reply) =>
      render(
        req,
        reply,
        'overview',
        'Overview',
        overviewView(
          { csrf: kit.csrf(req) },
          {
            ...(await data.overview(req.query.days, req.query.asset)),
            notice: noticeText(req.query),
          },
        ),
      ),
  )

  c.get<{ Querystring: { cursor?: string } }>(
    '/wallet-addresses',
    {
      config: signedIn,
      schema: { querystring: { type: 'object', properties: { cursor: uuid } } },
    },
    async (req, reply) => {
      const page = await listWalletAddresses(db, { first: PAGE_SIZE, after: req.query.cursor })
      const last = page.items.at(-1)
      return render(
        req,
        reply,
        'wallet-addresses',
        'Wallet addresses',
        walletAddressesView({
          rows: await data.walletRows(page.items),
          next: page.hasNextPage ? nextHref('/console/wallet-addresses', {}, last?.id) : undefined,
        }),
      )
    },
  )

  /** The wallet address a list is filtered by, or a 404 page when it does not exist. */
  const filterWallet = async (id: string | undefined) => {
    if (id === undefined) return undefined
    const wa = await getWalletAddress(db, { id })
    if (!wa) throw new HttpError(404, 'not_found', 'There is no such wallet address.')
    return { id: wa.id, url: walletAddressUrl(config, wa.path) }
  }
  const listQuery = (states: readonly string[]) => ({
    type: 'object',
    properties: { cursor: uuid, walletAddressId: uuid, state: { enum: states } },
  })

  c.get<{
    Querystring: { cursor?: string; walletAddressId?: string; state?: IncomingPaymentState }
  }>(
    '/incoming-payments',
    { config: signedIn, schema: { querystring: listQuery(INCOMING_STATES) } },
    async (req, reply) => {
      const { walletAddressId, state, cursor } = req.query
      const walletAddress = await filterWallet(walletAddressId)
      const page = await adminPage(
        { first: PAGE_SIZE, cursor },
        async (id) => (await getIncomingPayment(db, id)) !== undefined,
        incomingPaymentPages(db, { walletAddressId, state }),
      )
      return render(
        req,
        reply,
        'payments',
        'Incoming payments',
        incomingPaymentsView({
          rows: data.incomingRows(page.items),
          state,
          walletAddress,
          next: page.pagination.hasNextPage
            ? nextHref(
                paymentsHref('incoming', {}),
                { walletAddressId, state },
                page.pagination.endCursor,
              )
            : undefined,
        }),
      )
    },
  )

  c.get<{
    Querystring: { cursor?: string; walletAddressId?: string; state?: OutgoingPaymentState }
  }>(
    '/outgoing-payments',
    { config: signedIn, schema: { querystring: listQuery(OUTGOING_STATES) } },
    async (req, reply) => {
      const { walletAddressId, state, cursor } = req.query
      const walletAddress = await filterWallet(walletAddressId)
      const page = await adminPage(
        { first: PAGE_SIZE, cursor },
        async (id) => (await getOutgoingPayment(db, id)) !== undefined,
        outgoingPaymentPages(db, { walletAddressId, state }),
      )
      return render(
        req,
        reply,
        'payments',
        'Outgoing payments',
        outgoingPaymentsView({
          rows: await data.outgoingRows(page.items),
          state,
          walletAddress,
          next: page.pagination.hasNextPage
            ? nextHref(
                paymentsHref('outgoing', {}),
                { walletAddressId, state },
                page.pagination.endCursor,
              )
            : undefined,
        }),
      )
    },
  )

  c.get<{ Params: { id: string } }>(
    '/incoming-payments/:id',
    { config: signedIn, schema: { params: idParams } },
    async (req, reply) => {
      const p = await getIncomingPayment(db, req.params.id)
      if (!p) return message(reply, 404, 'Not found', 'There is no such incoming payment.')
      const [row] = data.incomingRows([p])
      return render(
        req,
        reply,
        'payments',
        'Incoming payment',
        incomingPaymentView({
          ...row!,
          url: `${config.openPaymentsUrl}/incoming-payments/${p.id}`,
        }),
      )
    },
  )

  c.get<{ Params: { id: string } }>(
    '/outgoing-payments/:id',
    { config: signedIn, schema: { params: idParams } },
    async (req, reply) => {
      const p = await getOutgoingPayment(db, req.params.id)
      if (!p) return message(reply, 404, 'Not found', 'There is no such outgoing payment.')
      const [row] = await data.outgoingRows([p])
      return render(
        req,
        reply,
        'payments',
        'Outgoing payment',
        outgoingPaymentView({
          ...row!,
          url: `${config.openPaymentsUrl}/outgoing-payments/${p.id}`,
          ...(await data.transfersOf(p)),
        }),
      )
    },
  )

  c.get<{
    Querystring: {
      cursor?: string
      status?: 'pending' | 'delivered' | 'dead'
      notice?: string
      count?: number
    }
  }>(
    '/webhooks',
    {
      config: signedIn,
      schema: {
        querystring: {
          type: 'object',
          properties: {
            cursor: uuid,
            status: { enum: ['pending', 'delivered', 'dead'] },
            ...notice,
          },
        },
      },
    },
    async (req, reply) => {
      const { status, cursor } = req.query
      const [queue, endpoints, page] = await Promise.all([
        queueDepth(db),
        listEndpoints(db, { first: 100 }),
        listDeliveries(db, { status }, { first: PAGE_SIZE, after: cursor }),
      ])
      return render(
        req,
        reply,
        'webhooks',
        'Webhooks',
        webhooksView(
          { csrf: kit.csrf(req) },
          {
            queue,
            endpoints: endpoints.items,
            deliveries: page.items,
            allEndpoints: await data.endpointsOf(page.items),
            status,
            next: page.hasNextPage
              ? nextHref('/console/webhooks', { status }, page.items.at(-1)?.id)
              : undefined,
            notice: noticeText(req.query),
          },
        ),
      )
    },
  )

  c.get<{ Params: { id: string }; Querystring: { notice?: string; count?: number } }>(
    '/webhook-deliveries/:id',
    {
      config: signedIn,
      schema: { params: idParams, querystring: { type: 'object', properties: notice } },
    },
    async (req, reply) => {
      const delivery = await getDelivery(db, req.params.id)
      if (!delivery) return message(reply, 404, 'Not found', 'There is no such delivery.')
      const event = (await getEvent(db, delivery.eventId))!
      return render(
        req,
        reply,
        'webhooks',
        'Webhook delivery',
        deliveryView(
          { csrf: kit.csrf(req) },
          {
            delivery,
            endpoint: await getEndpoint(db, delivery.endpointId),
            payload: renderPayload(config, event),
            notice: noticeText(req.query),
          },
        ),
      )
    },
  )

  // ---------------------------------------------------------------------------------------
  // Actions: each a POST with the session's CSRF token, answered with a redirect (so that a
  // reload does not send it again).

  c.post<{ Params: { id: string }; Body: { back?: string } }>(
    '/webhook-deliveries/:id/replay',
    {
      config: signedIn,
      schema: { params: idParams, body: form(['csrf', 'back']) },
    },
    async (req, reply) => {
      const delivery = await getDelivery(db, req.params.id)
      if (!delivery) return message(reply, 404, 'Not found', 'There is no such delivery.')
      const replayed = await replayEvent(db, delivery.eventId, delivery.endpointId)
      const back = consolePath(req.body.back)
      if (replayed === 'unknown_endpoint' || replayed === 'unknown_event')
        return reply.redirect(withNotice(back, 'endpoint-gone'), 303)
      req.log.info({ deliveryId: delivery.id }, 'console: delivery replayed')
      return reply.redirect(withNotice(back, 'replayed', replayed.length), 303)
    },
  )

  c.post<{ Params: { id: string } }>(
    '/webhook-endpoints/:id/replay-dead-letters',
    { config: signedIn, schema: { params: idParams, body: form(['csrf']) } },
    async (req, reply) => {
      const endpoint = await getEndpoint(db, req.params.id)
      if (!endpoint) return message(reply, 404, 'Not found', 'There is no such endpoint.')
      const count = await replayDeadLetters(db, endpoint.id)
      req.log.info({ endpointId: endpoint.id, count }, 'console: dead letters replayed')
      return reply.redirect(withNotice('/console/webhooks', 'replayed', count), 303)
    },
  )
}
