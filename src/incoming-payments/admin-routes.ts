import type { FastifyInstance } from 'fastify'
import { paymentListRoute } from '../admin/paging.ts'
import { amount, cancelBody, dateTime, errorResponse, idParams, uuid } from '../admin/schemas.ts'
import type { Deps } from '../deps.ts'
import { HttpError, notFound } from '../lib/errors.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import {
  cancelIncomingPayment,
  completeIncomingPayment,
  getIncomingPayment,
  type IncomingPayment,
  incomingPaymentPages,
  stateOf,
} from './service.ts'

const STATES = ['open', 'completed', 'expired', 'cancelled'] as const

const incomingPaymentSchema = {
  type: 'object',
  required: [
    'id',
    'url',
    'walletAddressId',
    'walletAddress',
    'state',
    'assetCode',
    'assetScale',
    'receivedAmount',
    'client',
    'expiresAt',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: uuid,
    url: { type: 'string', description: 'Its Open Payments id.' },
    walletAddressId: uuid,
    walletAddress: { type: 'string' },
    state: {
      type: 'string',
      enum: STATES,
      description:
        'Open Payments clients see `completed: true` for completed and cancelled payments.',
    },
    assetCode: { type: 'string' },
    assetScale: { type: 'integer' },
    incomingAmount: amount,
    receivedAmount: amount,
    client: { type: 'string', description: 'The client that created it.' },
    metadata: { type: 'object', additionalProperties: true },
    expiresAt: dateTime,
    completedAt: dateTime,
    cancelledAt: dateTime,
    cancelReason: { type: 'string' },
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const

type IdParams = { Params: { id: string } }

export function incomingPaymentAdminRoutes(app: FastifyInstance, deps: Deps): void {
  const { db, config, metrics } = deps
  const json = (ip: IncomingPayment) => ({
    id: ip.id,
    url: `${config.openPaymentsUrl}/incoming-payments/${ip.id}`,
    walletAddressId: ip.walletAddressId,
    walletAddress: walletAddressUrl(config, ip.walletAddressPath),
    state: stateOf(ip),
    assetCode: ip.assetCode,
    assetScale: ip.assetScale,
    ...(ip.incomingAmount !== null && { incomingAmount: ip.incomingAmount.toString() }),
    receivedAmount: ip.receivedAmount.toString(),
    client: ip.client,
    ...(ip.metadata !== null && { metadata: ip.metadata }),
    expiresAt: ip.expiresAt.toISOString(),
    ...(ip.completedAt && { completedAt: ip.completedAt.toISOString() }),
    ...(ip.cancelledAt && { cancelledAt: ip.cancelledAt.toISOString() }),
    ...(ip.cancelReason !== null && { cancelReason: ip.cancelReason }),
    createdAt: ip.createdAt.toISOString(),
    updatedAt: ip.updatedAt.toISOString(),
  })
  const load = async (id: string) => {
    const ip = await getIncomingPayment(db, id)
    if (!ip) throw notFound('incoming payment not found')
    return ip
  }

  paymentListRoute(app, db, {
    path: '/incoming-payments',
    noun: 'incoming payments',
    states: STATES,
    itemSchema: incomingPaymentSchema,
    exists: async (id) => (await getIncomingPayment(db, id)) !== undefined,
    pages: (filter) => incomingPaymentPages(db, filter),
    render: (items) => items.map(json),
  })

  app.get<IdParams>(
    '/incoming-payments/:id',
    {
      schema: {
        summary: 'Get an incoming payment',
        tags: ['incoming payments'],
        params: idParams,
        response: { 200: incomingPaymentSchema, 404: errorResponse },
      },
    },
    async (req) => json(await load(req.params.id)),
  )

  app.post<IdParams>(
    '/incoming-payments/:id/complete',
    {
      schema: {
        summary: 'Complete an incoming payment',
        description:
          'It accepts no more money. Completing a completed payment returns it unchanged; an expired or cancelled one is 409.',
        tags: ['incoming payments'],
        params: idParams,
        response: { 200: incomingPaymentSchema, 404: errorResponse, 409: errorResponse },
      },
    },
    async (req) => {
      const ip = await load(req.params.id)
      const done = await completeIncomingPayment(db, ip.id)
      if (done !== 'wrong_state') {
        metrics.incomingCompleted.inc()
        return json(done)
      }
      const now = await load(ip.id)
      if (stateOf(now) === 'completed') return json(now)
      throw new HttpError(409, 'wrong_state', `the incoming payment is ${stateOf(now)}`)
    },
  )

  app.post<IdParams & { Body: { reason: string } }>(
    '/incoming-payments/:id/cancel',
    {
      schema: {
        summary: 'Cancel an open incoming payment',
        description:
          'It accepts no more money, over Interledger or from this server’s own payments; what it received stays received. Open Payments clients see it as `completed: true` (the spec has no other closed state). Cancelling a cancelled payment returns it unchanged; a completed or expired one is 409.',
        tags: ['incoming payments'],
        params: idParams,
        body: cancelBody,
        response: { 200: incomingPaymentSchema, 404: errorResponse, 409: errorResponse },
      },
    },
    async (req) => {
      const result = await cancelIncomingPayment(db, req.params.id, req.body.reason)
      if (result === 'not_found') throw notFound('incoming payment not found')
      if (result === 'wrong_state') {
        const now = await load(req.params.id)
        throw new HttpError(409, 'wrong_state', `the incoming payment is ${stateOf(now)}`)
      }
      return json(result.payment)
    },
  )
}
