import type { FastifyInstance } from 'fastify'
import { errorResponse } from '../admin/schemas.ts'
import type { Deps } from '../deps.ts'
import { HttpError } from '../lib/errors.ts'
import type { Ratio } from './ratio.ts'
import type { RatesSource } from './service.ts'

const code = { type: 'string', pattern: '^[A-Za-z0-9]{1,16}$' } as const

/** Digits after the point of the approximate decimal shown next to an exact rate. */
const APPROXIMATE_DIGITS = 12

const sourceSchema = {
  type: 'object',
  required: ['source'],
  properties: {
    source: { type: 'string', enum: ['static', 'http'] },
    table: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: { type: ['string', 'number'] },
      },
      description: 'The static table (`RATES`): units of the inner code per one unit of the outer.',
    },
    url: {
      type: 'string',
      description:
        'The rates endpoint (`RATES_URL`), without credentials; query values are shown as `redacted`.',
    },
    cacheSeconds: { type: 'integer' },
    timeoutMs: { type: 'integer' },
  },
} as const

const rateSchema = {
  type: 'object',
  required: ['base', 'quote', 'numerator', 'denominator', 'approximate'],
  properties: {
    base: { type: 'string' },
    quote: { type: 'string' },
    numerator: { type: 'string', description: 'The exact rate is numerator / denominator.' },
    denominator: { type: 'string' },
    approximate: {
      type: 'string',
      description: `The rate as a decimal, truncated to ${APPROXIMATE_DIGITS} places: for people, never for money.`,
    },
  },
} as const

export function rateAdminRoutes(app: FastifyInstance, { config, rates }: Deps): void {
  app.get(
    '/rates',
    {
      schema: {
        summary: 'The exchange-rate source in use',
        tags: ['rates'],
        response: { 200: sourceSchema },
      },
    },
    async () => describeSource(config.openPayments.rates),
  )

  app.get<{ Params: { base: string; quote: string } }>(
    '/rates/:base/:quote',
    {
      schema: {
        summary: 'Look up the rate of a pair',
        description:
          'Units of `quote` per one unit of `base` (major units), as quotes use it: from the static table (or the exact inverse of the reverse pair), or from the rates endpoint through its cache.',
        tags: ['rates'],
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['base', 'quote'],
          properties: { base: code, quote: code },
        },
        response: { 200: rateSchema, 404: errorResponse },
      },
    },
    async (req) => {
      const { base, quote } = req.params
      const rate = await rates.rate(base, quote)
      if (!rate)
        throw new HttpError(
          404,
          'unknown_rate',
          `no rate for ${base} to ${quote}: the pair is unknown or the rates source is unavailable`,
        )
      return {
        base,
        quote,
        numerator: rate.num.toString(),
        denominator: rate.den.toString(),
        approximate: approximate(rate),
      }
    },
  )
}

function describeSource(source: RatesSource) {
  if (source.kind === 'static') return { source: 'static', table: source.table }
  // A feed's URL may carry an API key: never show credentials or query values.
  const url = new URL(source.url)
  url.username = ''
  url.password = ''
  for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, 'redacted')
  return {
    source: 'http',
    url: url.href,
    cacheSeconds: Math.round(source.cacheTtlMs / 1000),
    timeoutMs: source.timeoutMs,
  }
}

function approximate(r: Ratio): string {
  const scaled = (r.num * 10n ** BigInt(APPROXIMATE_DIGITS)) / r.den
  const digits = scaled.toString().padStart(APPROXIMATE_DIGITS + 1, '0')
  const fraction = digits.slice(-APPROXIMATE_DIGITS).replace(/0+$/, '')
  return `${digits.slice(0, -APPROXIMATE_DIGITS)}${fraction ? `.${fraction}` : ''}`
}
