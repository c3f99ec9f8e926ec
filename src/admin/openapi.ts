import type { FastifyInstance, RouteOptions } from 'fastify'
import { errorResponse } from './schemas.ts'

declare module 'fastify' {
  interface FastifySchema {
    summary?: string
    description?: string
    tags?: string[]
    /** `[]` for a route that needs no API key. */
    security?: unknown[]
    /** The media type of a 200 response that is text rather than JSON (e.g. `/metrics`). */
    textResponse?: string
  }
}

type Json = Record<string, unknown>

const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Makes the call idempotent: a retry with the same key and request gets the first response (marked `Idempotent-Replayed: true`); the key with another request is 422; while the first is running, 409.',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
}

/**
 * Builds the admin API's OpenAPI 3.1 document from the route schemas themselves, so the document
 * cannot drift from what the routes validate. Every route must carry a `summary`: registering one
 * without is refused, so the document lists every route there is. The operator console's HTML
 * pages (`config.console`) are not API and are left out. Call before registering routes.
 */
export function collectOpenApi(
  app: FastifyInstance,
  info: { title: string; version: string },
): () => Json {
  const paths: Record<string, Record<string, Json>> = {}
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter(
      (m) => m !== 'HEAD',
    )
    // The console's HTML pages are not part of the API (docs/console.md).
    if (methods.length === 0 || route.config?.console) return
    const schema = route.schema
    if (!schema?.summary) {
      throw new Error(`admin route ${methods.join(',')} ${route.url} has no OpenAPI summary`)
    }
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    for (const method of methods) {
      paths[path] ??= {}
      paths[path][method.toLowerCase()] = operation(method, schema as Json)
    }
  })
  return () => ({
    openapi: '3.1.0',
    info,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_KEY' } },
    },
    security: [{ apiKey: [] }],
    paths,
  })
}

function operation(method: string, schema: Json): Json {
  const mutation = MUTATIONS.has(method)
  const parameters = [
    ...toParameters(schema.params as Json | undefined, 'path'),
    ...toParameters(schema.querystring as Json | undefined, 'query'),
    ...(mutation ? [idempotencyKey] : []),
  ]
  const isPublic = Array.isArray(schema.security) && schema.security.length === 0
  const declared = (schema.response as Record<string, Json> | undefined) ?? {}
  // What every route of its kind may answer, besides what it declares itself.
  const common: Record<string, Json> = {
    // An address that presented too many wrong keys is refused for a while (outbound-and-limits.md).
    ...(!isPublic && { 401: errorResponse, 429: errorResponse }),
    ...((schema.params || schema.querystring || schema.body || mutation) && { 400: errorResponse }),
    // A path names a resource, which may not exist.
    ...(schema.params !== undefined && { 404: errorResponse }),
    ...(mutation && { 409: errorResponse, 422: errorResponse }),
    ...(schema.body !== undefined && { 413: errorResponse, 415: errorResponse }),
  }
  const responses: Record<string, Json> = {}
  for (const [status, body] of Object.entries({ ...common, ...declared })) {
    responses[status] = {
      description: status.startsWith('2') ? 'Success' : 'Error',
      ...(Number(status) !== 204 && { content: { 'application/json': { schema: body } } }),
    }
  }
  if (typeof schema.textResponse === 'string') {
    responses['200'] = {
      description: 'Success',
      content: { [schema.textResponse]: { schema: { type: 'string' } } },
    }
  }
  return {
    summary: schema.summary,
    ...(schema.description !== undefined && { description: schema.description }),
    ...(schema.tags !== undefined && { tags: schema.tags }),
    ...(isPublic && { security: [] }),
    ...(parameters.length > 0 && { parameters }),
    ...(schema.body !== undefined && {
      requestBody: { required: true, content: { 'application/json': { schema: schema.body } } },
    }),
    responses,
  }
}

function toParameters(obj: Json | undefined, where: 'path' | 'query'): Json[] {
  const props = (obj?.properties ?? {}) as Record<string, Json>
  const required = new Set((obj?.required as string[] | undefined) ?? [])
  return Object.entries(props).map(([name, schema]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema,
  }))
}
