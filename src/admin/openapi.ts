import type { FastifyInstance, RouteOptions } from 'fastify'

declare module 'fastify' {
  interface FastifySchema {
    summary?: string
    description?: string
    tags?: string[]
  }
}

type Json = Record<string, unknown>

/**
 * Builds the admin API's OpenAPI 3.1 document from the route schemas themselves, so the document
 * cannot drift from what the routes validate. Call before registering the routes.
 */
export function collectOpenApi(
  app: FastifyInstance,
  info: { title: string; version: string },
): () => Json {
  const paths: Record<string, Record<string, Json>> = {}
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema
    if (!schema?.summary) return
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    for (const method of methods) {
      if (method === 'HEAD') continue
      paths[path] ??= {}
      paths[path][method.toLowerCase()] = operation(schema as Json)
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

function operation(schema: Json): Json {
  const parameters = [
    ...toParameters(schema.params as Json | undefined, 'path'),
    ...toParameters(schema.querystring as Json | undefined, 'query'),
  ]
  const responses = Object.fromEntries(
    Object.entries((schema.response as Record<string, Json> | undefined) ?? {}).map(
      ([status, body]) => [
        status,
        {
          description: status.startsWith('2') ? 'Success' : 'Error',
          ...(Number(status) !== 204 && { content: { 'application/json': { schema: body } } }),
        },
      ],
    ),
  )
  return {
    summary: schema.summary,
    ...(schema.description !== undefined && { description: schema.description }),
    ...(schema.tags !== undefined && { tags: schema.tags }),
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
