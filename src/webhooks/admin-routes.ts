import type { FastifyInstance } from 'fastify'
import { adminPage } from '../admin/paging.ts'
import { amount, errorResponse, idParams, pageInfo, pageQuery, uuid } from '../admin/schemas.ts'
import { getAsset } from '../assets/service.ts'
import type { WebhookDeliveryStatus } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { parseUint64 } from '../lib/amount.ts'
import { badRequest, notFound } from '../lib/errors.ts'
import { getPeer } from '../peers/service.ts'
import { getWalletAddress } from '../wallet-addresses/service.ts'
import {
  type Delivery,
  deliveriesOfEvent,
  getDelivery,
  getEvent,
  listDeliveries,
  replayDeadLetters,
  replayEvent,
} from './deliveries.ts'
import {
  createEndpoint,
  deleteEndpoint,
  type Endpoint,
  endpointIdUsed,
  getEndpoint,
  isHttpUrl,
  listEndpoints,
  rotateSecret,
  updateEndpoint,
} from './endpoints.ts'
import { EVENT_TYPES, type EventType } from './events.ts'
import { renderPayload } from './payload.ts'
import { deleteThreshold, getThreshold, setThreshold, type ThresholdTarget } from './thresholds.ts'

const dateTime = { type: 'string', format: 'date-time' } as const
const eventType = { type: 'string', enum: EVENT_TYPES } as const
const eventTypes = {
  type: 'array',
  minItems: 1,
  uniqueItems: true,
  items: eventType,
  description: 'The event types this endpoint receives.',
} as const
const url = {
  type: 'string',
  format: 'uri',
  maxLength: 2000,
  description: 'An http or https URL, without credentials; redirects are not followed.',
} as const

const endpointSchema = {
  type: 'object',
  required: ['id', 'url', 'eventTypes', 'enabled', 'createdAt', 'updatedAt'],
  properties: {
    id: uuid,
    url: { type: 'string' },
    description: { type: 'string' },
    eventTypes: { type: 'array', items: eventType },
    enabled: { type: 'boolean' },
    previousSecretExpiresAt: {
      ...dateTime,
      description: 'Until then the secret before the last rotation signs too.',
    },
    createdAt: dateTime,
    updatedAt: dateTime,
  },
} as const

const withSecret = {
  ...endpointSchema,
  required: [...endpointSchema.required, 'secret'],
  properties: {
    ...endpointSchema.properties,
    secret: {
      type: 'string',
      description: 'The signing secret (`whsec_…`). Shown only here: store it.',
    },
  },
} as const

const attemptSchema = {
  type: 'object',
  required: ['attempt', 'startedAt', 'durationMs', 'delivered'],
  properties: {
    attempt: { type: 'integer' },
    startedAt: dateTime,
    durationMs: { type: 'integer' },
    statusCode: { type: 'integer', description: 'The receiver’s HTTP status, if it answered.' },
    error: { type: 'string' },
    responseExcerpt: { type: 'string', description: 'The start of the receiver’s answer.' },
    delivered: { type: 'boolean' },
  },
} as const

const deliverySchema = {
  type: 'object',
  required: ['id', 'eventId', 'eventType', 'endpointId', 'status', 'createdAt', 'attempts'],
  properties: {
    id: uuid,
    eventId: { ...uuid, description: 'Also the `webhook-id` header of every attempt.' },
    eventType,
    endpointId: uuid,
    status: { type: 'string', enum: ['pending', 'delivered', 'dead'] },
    nextAttemptAt: dateTime,
    lastAttemptAt: dateTime,
    lastStatusCode: { type: 'integer' },
    lastError: { type: 'string' },
    deliveredAt: dateTime,
    createdAt: dateTime,
    attempts: { type: 'array', items: attemptSchema },
  },
} as const

const payloadSchema = {
  type: 'object',
  required: ['id', 'type', 'timestamp', 'data'],
  description: 'The body receivers get.',
  properties: {
    id: uuid,
    type: eventType,
    timestamp: dateTime,
    data: { type: 'object', additionalProperties: true },
  },
} as const

const deliveryWithPayload = {
  ...deliverySchema,
  required: [...deliverySchema.required, 'payload'],
  properties: { ...deliverySchema.properties, payload: payloadSchema },
} as const

const eventSchema = {
  type: 'object',
  required: ['id', 'type', 'timestamp', 'payload', 'deliveries'],
  properties: {
    id: uuid,
    type: eventType,
    timestamp: dateTime,
    payload: payloadSchema,
    deliveries: { type: 'array', items: deliverySchema },
  },
} as const

const idempotencyHeader =
  ' Send an `Idempotency-Key` header to make a retry return the first response instead of acting again.'

const endpointJson = (e: Endpoint) => ({
  id: e.id,
  url: e.url,
  ...(e.description !== null && { description: e.description }),
  eventTypes: e.eventTypes,
  enabled: e.enabled,
  ...(e.previousSecretExpiresAt && {
    previousSecretExpiresAt: e.previousSecretExpiresAt.toISOString(),
  }),
  createdAt: e.createdAt.toISOString(),
  updatedAt: e.updatedAt.toISOString(),
})

const deliveryJson = (d: Delivery) => ({
  id: d.id,
  eventId: d.eventId,
  eventType: d.eventType,
  endpointId: d.endpointId,
  status: d.status,
  ...(d.nextAttemptAt && { nextAttemptAt: d.nextAttemptAt.toISOString() }),
  ...(d.lastAttemptAt && { lastAttemptAt: d.lastAttemptAt.toISOString() }),
  ...(d.lastStatusCode !== null && { lastStatusCode: d.lastStatusCode }),
  ...(d.lastError !== null && { lastError: d.lastError }),
  ...(d.deliveredAt && { deliveredAt: d.deliveredAt.toISOString() }),
  createdAt: d.createdAt.toISOString(),
  attempts: d.attempts.map((a) => ({
    attempt: a.attempt,
    startedAt: a.startedAt.toISOString(),
    durationMs: a.durationMs,
    ...(a.statusCode !== null && { statusCode: a.statusCode }),
    ...(a.error !== null && { error: a.error }),
    ...(a.responseExcerpt !== null && { responseExcerpt: a.responseExcerpt }),
    delivered: a.delivered,
  })),
})

const checkUrl = (value: string) => {
  if (!isHttpUrl(value))
    throw badRequest('body.url must be an http:// or https:// URL without credentials', {
      field: 'body.url',
    })
}

type IdParams = { Params: { id: string } }

/**
 * Webhook endpoints, deliveries, replays and low-balance thresholds on the admin listener. Every
 * POST is idempotent under an `Idempotency-Key`; PUT, PATCH and DELETE are idempotent by nature.
 */
export function webhookAdminRoutes(app: FastifyInstance, deps: Deps): void {
  const { db, config } = deps

  const loadEndpoint = async (id: string) => {
    const endpoint = await getEndpoint(db, id)
    if (!endpoint) throw notFound('webhook endpoint not found')
    return endpoint
  }

  app.post<{
    Body: { url: string; eventTypes: EventType[]; description?: string; enabled?: boolean }
  }>(
    '/webhook-endpoints',
    {
      schema: {
        summary: 'Create a webhook endpoint',
        description: `The response carries the endpoint's signing secret, shown this once.${idempotencyHeader}`,
        tags: ['webhooks'],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'eventTypes'],
          properties: {
            url,
            eventTypes,
            description: { type: 'string', maxLength: 500 },
            enabled: { type: 'boolean', default: true },
          },
        },
        response: { 201: withSecret, 400: errorResponse, 409: errorResponse, 422: errorResponse },
      },
    },
    async (req, reply) => {
      checkUrl(req.body.url)
      const { endpoint, secret } = await createEndpoint(db, req.body)
      return reply.code(201).send({ ...endpointJson(endpoint), secret })
    },
  )

  app.get<{ Querystring: { first: number; cursor?: string } }>(
    '/webhook-endpoints',
    {
      schema: {
        summary: 'List webhook endpoints, oldest first',
        tags: ['webhooks'],
        querystring: pageQuery,
        response: {
          200: {
            type: 'object',
            required: ['items', 'pagination'],
            properties: { items: { type: 'array', items: endpointSchema }, pagination: pageInfo },
          },
          400: errorResponse,
        },
      },
    },
    async (req) => {
      const page = await adminPage(
        req.query,
        (id) => endpointIdUsed(db, id),
        async ({ cursorId, limit }) =>
          (await listEndpoints(db, { first: limit, after: cursorId })).items,
      )
      return { items: page.items.map(endpointJson), pagination: page.pagination }
    },
  )

  app.get<IdParams>(
    '/webhook-endpoints/:id',
    {
      schema: {
        summary: 'Get a webhook endpoint',
        tags: ['webhooks'],
        params: idParams,
        response: { 200: endpointSchema, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => endpointJson(await loadEndpoint(req.params.id)),
  )

  app.patch<
    IdParams & {
      Body: {
        url?: string
        eventTypes?: EventType[]
        description?: string | null
        enabled?: boolean
      }
    }
  >(
    '/webhook-endpoints/:id',
    {
      schema: {
        summary: 'Update a webhook endpoint (URL, event types, description, enabled)',
        description:
          'Disabling pauses it: new events are not queued for it, queued ones wait until it is enabled again.',
        tags: ['webhooks'],
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            url,
            eventTypes,
            description: { type: ['string', 'null'], maxLength: 500 },
            enabled: { type: 'boolean' },
          },
        },
        response: { 200: endpointSchema, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      if (req.body.url !== undefined) checkUrl(req.body.url)
      const endpoint = await updateEndpoint(db, req.params.id, req.body)
      if (!endpoint) throw notFound('webhook endpoint not found')
      return endpointJson(endpoint)
    },
  )

  app.delete<IdParams>(
    '/webhook-endpoints/:id',
    {
      schema: {
        summary: 'Delete a webhook endpoint',
        description:
          'Nothing more is sent to it; its deliveries stay readable. Deleting it again answers 204 too.',
        tags: ['webhooks'],
        params: idParams,
        response: { 204: { type: 'null' }, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req, reply) => {
      if (!(await deleteEndpoint(db, req.params.id))) throw notFound('webhook endpoint not found')
      return reply.code(204).send()
    },
  )

  app.post<IdParams & { Body: { previousSecretValidSeconds?: number } | undefined }>(
    '/webhook-endpoints/:id/rotate-secret',
    {
      schema: {
        summary: 'Rotate a webhook endpoint’s signing secret',
        description: `Returns the new secret, shown this once. The previous secret keeps signing alongside it (a second \`v1,\` signature) for \`previousSecretValidSeconds\` (default 86400; 0 ends it now).${idempotencyHeader}`,
        tags: ['webhooks'],
        params: idParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            previousSecretValidSeconds: { type: 'integer', minimum: 0, maximum: 604_800 },
          },
        },
        response: { 200: withSecret, 400: errorResponse, 404: errorResponse, 422: errorResponse },
      },
    },
    async (req) => {
      const rotated = await rotateSecret(
        db,
        req.params.id,
        req.body?.previousSecretValidSeconds ?? 86_400,
      )
      if (!rotated) throw notFound('webhook endpoint not found')
      return { ...endpointJson(rotated.endpoint), secret: rotated.secret }
    },
  )

  app.post<IdParams>(
    '/webhook-endpoints/:id/replay-dead-letters',
    {
      schema: {
        summary: 'Replay every dead-lettered delivery of a webhook endpoint',
        description: `Each starts over: due now, a full retry period, the same \`webhook-id\`.${idempotencyHeader}`,
        tags: ['webhooks'],
        params: idParams,
        response: {
          202: {
            type: 'object',
            required: ['replayed'],
            properties: { replayed: { type: 'integer' } },
          },
          400: errorResponse,
          404: errorResponse,
          422: errorResponse,
        },
      },
    },
    async (req, reply) => {
      const endpoint = await loadEndpoint(req.params.id)
      return reply.code(202).send({ replayed: await replayDeadLetters(db, endpoint.id) })
    },
  )

  app.get<{
    Querystring: {
      first: number
      cursor?: string
      endpointId?: string
      status?: WebhookDeliveryStatus
      eventType?: EventType
    }
  }>(
    '/webhook-deliveries',
    {
      schema: {
        summary: 'List webhook deliveries with their attempts, newest first',
        tags: ['webhooks'],
        querystring: {
          ...pageQuery,
          properties: {
            ...pageQuery.properties,
            endpointId: uuid,
            status: { type: 'string', enum: ['pending', 'delivered', 'dead'] },
            eventType,
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'pagination'],
            properties: { items: { type: 'array', items: deliverySchema }, pagination: pageInfo },
          },
          400: errorResponse,
        },
      },
    },
    async (req) => {
      const { first, cursor, ...filter } = req.query
      const page = await adminPage(
        { first, cursor },
        async (id) => (await getDelivery(db, id)) !== undefined,
        async ({ cursorId, limit }) =>
          (await listDeliveries(db, filter, { first: limit, after: cursorId })).items,
      )
      return { items: page.items.map(deliveryJson), pagination: page.pagination }
    },
  )

  app.get<IdParams>(
    '/webhook-deliveries/:id',
    {
      schema: {
        summary: 'Get a webhook delivery with its attempts and payload',
        tags: ['webhooks'],
        params: idParams,
        response: { 200: deliveryWithPayload, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      const delivery = await getDelivery(db, req.params.id)
      if (!delivery) throw notFound('webhook delivery not found')
      const event = (await getEvent(db, delivery.eventId))!
      return { ...deliveryJson(delivery), payload: renderPayload(config, event) }
    },
  )

  app.get<IdParams>(
    '/webhook-events/:id',
    {
      schema: {
        summary: 'Get a webhook event with its payload and deliveries',
        tags: ['webhooks'],
        params: idParams,
        response: { 200: eventSchema, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      const event = await getEvent(db, req.params.id)
      if (!event) throw notFound('webhook event not found')
      return {
        id: event.id,
        type: event.type,
        timestamp: event.createdAt.toISOString(),
        payload: renderPayload(config, event),
        deliveries: (await deliveriesOfEvent(db, event.id)).map(deliveryJson),
      }
    },
  )

  app.post<IdParams & { Body: { endpointId?: string } | undefined }>(
    '/webhook-events/:id/replay',
    {
      schema: {
        summary: 'Replay a webhook event to one endpoint or to every subscribed one',
        description: `With \`endpointId\`, to that endpoint; without, to every enabled endpoint now subscribed to the event's type. A delivery still pending is left as it is; others start over (due now, a full retry period, the same \`webhook-id\`).${idempotencyHeader}`,
        tags: ['webhooks'],
        params: idParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { endpointId: uuid },
        },
        response: {
          202: {
            type: 'object',
            required: ['deliveries'],
            properties: { deliveries: { type: 'array', items: deliverySchema } },
          },
          400: errorResponse,
          404: errorResponse,
          422: errorResponse,
        },
      },
    },
    async (req, reply) => {
      const replayed = await replayEvent(db, req.params.id, req.body?.endpointId)
      if (replayed === 'unknown_event') throw notFound('webhook event not found')
      if (replayed === 'unknown_endpoint') throw notFound('webhook endpoint not found')
      return reply.code(202).send({ deliveries: replayed.map(deliveryJson) })
    },
  )

  thresholdRoutes(app, deps)
}

const thresholdBody = {
  type: 'object',
  additionalProperties: false,
  required: ['threshold'],
  properties: { threshold: amount },
} as const

/** Low-balance thresholds: PUT sets, GET reads, DELETE removes (each idempotent). */
function thresholdRoutes(app: FastifyInstance, { db }: Deps): void {
  const targets = [
    {
      path: '/wallet-addresses/:id/balance-threshold',
      what: 'wallet address',
      event: 'wallet_address.balance_low',
      describe:
        'When a debit (a withdrawal, an outgoing payment’s reservation) takes the wallet address’s available balance from at or above this amount to below it, `wallet_address.balance_low` is sent. It overrides the threshold of the wallet address’s asset.',
      exists: async (id: string) => (await getWalletAddress(db, { id })) !== undefined,
      target: (id: string): ThresholdTarget => ({ walletAddressId: id }),
      key: 'walletAddressId',
    },
    {
      path: '/assets/:id/balance-threshold',
      what: 'asset',
      event: 'wallet_address.balance_low',
      describe:
        'The low-balance threshold of every wallet address of this asset that has none of its own.',
      exists: async (id: string) => (await getAsset(db, id)) !== undefined,
      target: (id: string): ThresholdTarget => ({ assetId: id }),
      key: 'assetId',
    },
    {
      path: '/peers/:id/liquidity-threshold',
      what: 'peer',
      event: 'peer.liquidity_low',
      describe:
        'When money the peer sends us takes its remaining credit line (credit limit less what it owes) from at or above this amount to below it, `peer.liquidity_low` is sent.',
      exists: async (id: string) => (await getPeer(db, { id })) !== undefined,
      target: (id: string): ThresholdTarget => ({ peerId: id }),
      key: 'peerId',
    },
  ] as const

  for (const t of targets) {
    const response = {
      type: 'object',
      required: [t.key, 'threshold'],
      properties: { [t.key]: uuid, threshold: amount },
    }
    const load = async (id: string) => {
      if (!(await t.exists(id))) throw notFound(`${t.what} not found`)
    }
    app.put<IdParams & { Body: { threshold: string } }>(
      t.path,
      {
        schema: {
          summary: `Set the low-balance threshold of a ${t.what} (${t.event})`,
          description: t.describe,
          tags: ['webhooks'],
          params: idParams,
          body: thresholdBody,
          response: { 200: response, 400: errorResponse, 404: errorResponse },
        },
      },
      async (req) => {
        await load(req.params.id)
        const threshold = parseUint64(req.body.threshold)
        await setThreshold(db, t.target(req.params.id), threshold)
        return { [t.key]: req.params.id, threshold: threshold.toString() }
      },
    )
    app.get<IdParams>(
      t.path,
      {
        schema: {
          summary: `Get the low-balance threshold of a ${t.what}`,
          tags: ['webhooks'],
          params: idParams,
          response: { 200: response, 400: errorResponse, 404: errorResponse },
        },
      },
      async (req) => {
        await load(req.params.id)
        const threshold = await getThreshold(db, t.target(req.params.id))
        if (threshold === undefined) throw notFound(`the ${t.what} has no threshold`)
        return { [t.key]: req.params.id, threshold: threshold.toString() }
      },
    )
    app.delete<IdParams>(
      t.path,
      {
        schema: {
          summary: `Remove the low-balance threshold of a ${t.what}`,
          tags: ['webhooks'],
          params: idParams,
          response: { 204: { type: 'null' }, 400: errorResponse, 404: errorResponse },
        },
      },
      async (req, reply) => {
        await load(req.params.id)
        await deleteThreshold(db, t.target(req.params.id))
        return reply.code(204).send()
      },
    )
  }
}
