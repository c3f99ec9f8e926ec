import { loadSpec } from '../../src/http/openapi-specs.ts'

export type Listener = 'open-payments' | 'auth' | 'admin' | 'ilp'

/** How a well-formed request to the route authenticates. */
export type Credential =
  | 'gnap' // GNAP token (maybe) and an HTTP message signature by the client's key
  | 'client' // signature only (grant requests)
  | 'continue' // continuation token and signature
  | 'admin' // Bearer admin API key
  | 'console' // console session cookie, CSRF token in the form
  | 'peer' // Bearer peer token
  | 'none'

type Schema = Record<string, any>

export interface Route {
  listener: Listener
  method: string
  /** Path with `{name}` placeholders. */
  template: string
  query?: Schema
  body?: Schema | 'form' | 'ilp'
  credential: Credential
}

const params = (path: string) => [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!)

function fromOpenApi(
  spec: Schema,
  listener: Listener,
  credential: (path: string, method: string) => Credential,
  prefix = '',
): Route[] {
  const routes: Route[] = []
  for (const [path, ops] of Object.entries<Schema>(spec.paths)) {
    for (const [method, op] of Object.entries<Schema>(ops)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue
      const query = (op.parameters ?? [])
        .concat(ops.parameters ?? [])
        .filter((p: Schema) => p.in === 'query')
      routes.push({
        listener,
        method: method.toUpperCase(),
        template: prefix && path === '/' ? prefix : prefix + path,
        ...(query.length > 0 && {
          query: {
            type: 'object',
            properties: Object.fromEntries(query.map((p: Schema) => [p.name, p.schema ?? {}])),
          },
        }),
        ...(op.requestBody && {
          body: op.requestBody.content?.['application/json']?.schema ?? {},
        }),
        credential: credential(path, method),
      })
    }
  }
  return routes
}

/**
 * Every route of every listener: the three official Open Payments specs, the admin listener's own
 * `/openapi.json`, and the routes no spec describes (interaction and sign-in pages, the operator
 * console, ILP-over-HTTP).
 */
export async function allRoutes(adminOpenApi: Schema, walletAddressPath: string): Promise<Route[]> {
  const [rs, as, was] = await Promise.all([
    loadSpec('resource-server'),
    loadSpec('auth-server'),
    loadSpec('wallet-address-server'),
  ])
  const form = 'form' as const
  return [
    ...fromOpenApi(rs, 'open-payments', () => 'gnap'),
    ...fromOpenApi(was, 'open-payments', () => 'none', walletAddressPath),
    { listener: 'open-payments', method: 'GET', template: '/.well-known/pay', credential: 'none' },
    ...fromOpenApi(as, 'auth', (path) =>
      path === '/' ? 'client' : path.startsWith('/continue') ? 'continue' : 'gnap',
    ),
    ...['', '/identity', '/consent'].map(
      (suffix): Route => ({
        listener: 'auth',
        method: 'GET',
        template: `/interact/{interactId}/{nonce}${suffix}`,
        query: {
          type: 'object',
          properties: { sig: { type: 'string' }, ts: { type: 'string' }, subject: {} },
        },
        credential: 'none',
      }),
    ),
    {
      listener: 'auth',
      method: 'POST',
      template: '/interact/{interactId}/{nonce}/consent',
      body: form,
      credential: 'none',
    },
    ...['GET', 'POST'].map(
      (method): Route => ({
        listener: 'auth',
        method,
        template: '/dev-sign-in',
        query: {
          type: 'object',
          properties: Object.fromEntries(
            ['interaction', 'return_to', 'wallet_address', 'ts', 'sig'].map((k) => [k, {}]),
          ),
        },
        ...(method === 'POST' && { body: form }),
        credential: 'none',
      }),
    ),
    ...fromOpenApi(adminOpenApi, 'admin', () => 'admin'),
    ...[
      '/console',
      '/console/sign-in',
      '/console/wallet-addresses',
      '/console/incoming-payments',
      '/console/outgoing-payments',
      '/console/incoming-payments/{id}',
      '/console/outgoing-payments/{id}',
      '/console/webhooks',
      '/console/webhook-deliveries/{id}',
      '/console/nowhere',
    ].map(
      (template): Route => ({
        listener: 'admin',
        method: 'GET',
        template,
        query: {
          type: 'object',
          properties: Object.fromEntries(
            ['cursor', 'days', 'asset', 'state', 'walletAddressId', 'next', 'notice', 'count'].map(
              (k) => [k, {}],
            ),
          ),
        },
        credential: 'console',
      }),
    ),
    ...[
      '/console/sign-in',
      '/console/sign-out',
      '/console/webhook-deliveries/{id}/replay',
      '/console/webhook-endpoints/{id}/replay-dead-letters',
    ].map(
      (template): Route => ({
        listener: 'admin',
        method: 'POST',
        template,
        body: form,
        credential: 'console',
      }),
    ),
    ...['/ilp', '/'].map(
      (template): Route => ({
        listener: 'ilp',
        method: 'POST',
        template,
        body: 'ilp',
        credential: 'peer',
      }),
    ),
  ]
}

export { params as pathParams }
