import type { FastifyInstance } from 'fastify'
import type { Deps } from '../deps.ts'
import { incomingPaymentStats } from '../incoming-payments/service.ts'
import type { DailyVolume } from '../lib/payment-stats.ts'
import { windowStart } from '../lib/payment-stats.ts'
import { outgoingPaymentStats } from '../outgoing-payments/service.ts'
import { dateTime, total } from './schemas.ts'

const volumeSchema = {
  type: 'array',
  description: 'One entry per UTC day and asset that has payments, oldest first.',
  items: {
    type: 'object',
    required: ['date', 'assetCode', 'assetScale', 'count', 'amount'],
    properties: {
      date: { type: 'string', format: 'date' },
      assetCode: { type: 'string' },
      assetScale: { type: 'integer' },
      count: { type: 'integer', description: 'Payments created that day.' },
      amount: { ...total, description: 'What they moved, in the asset’s smallest unit.' },
    },
  },
} as const

const counts = (states: readonly string[]) => ({
  type: 'object',
  required: [...states],
  properties: Object.fromEntries(states.map((s) => [s, { type: 'integer' }])),
})

const volumeJson = (v: DailyVolume[]) => v.map((d) => ({ ...d, amount: d.amount.toString() }))

/**
 * Payment counts and daily volume over a recent window: what an operator's dashboard (and the
 * console's chart) shows, computed by the payment services in one grouped query each.
 */
export function paymentStatsRoutes(app: FastifyInstance, { db }: Deps): void {
  app.get<{ Querystring: { days: number } }>(
    '/payment-stats',
    {
      schema: {
        summary: 'Payment counts by state and daily volume',
        description:
          'Incoming and outgoing payments created in the last `days` UTC calendar days (today included): how many are in each state now, and per day and asset how many were created and the money they moved: for incoming payments what they received, for outgoing payments what they sent (fees excluded), in the sender’s asset.',
        tags: ['payments'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { days: { type: 'integer', minimum: 1, maximum: 366, default: 14 } },
        },
        response: {
          200: {
            type: 'object',
            required: ['from', 'days', 'incoming', 'outgoing'],
            properties: {
              from: { ...dateTime, description: 'Start of the first day of the window (UTC).' },
              days: { type: 'integer' },
              incoming: {
                type: 'object',
                required: ['states', 'volume'],
                properties: {
                  states: counts(['open', 'completed', 'expired', 'cancelled']),
                  volume: volumeSchema,
                },
              },
              outgoing: {
                type: 'object',
                required: ['states', 'volume'],
                properties: {
                  states: counts(['sending', 'completed', 'failed', 'cancelled']),
                  volume: volumeSchema,
                },
              },
            },
          },
        },
      },
    },
    async (req) => {
      const from = windowStart(req.query.days)
      const [incoming, outgoing] = await Promise.all([
        incomingPaymentStats(db, from),
        outgoingPaymentStats(db, from),
      ])
      return {
        from: from.toISOString(),
        days: req.query.days,
        incoming: { states: incoming.states, volume: volumeJson(incoming.volume) },
        outgoing: { states: outgoing.states, volume: volumeJson(outgoing.volume) },
      }
    },
  )
}
