import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { createAdminApp } from '../src/admin/app.ts'
import { createAjv } from '../src/http/validation.ts'
import { createDeps } from '../src/server.ts'
import { type AdminContract, adminContract } from './helpers/admin-contract.ts'
import { request, startTestServer, type TestServer } from './helpers/server.ts'

/**
 * The admin OpenAPI document is complete: every route the admin listener registers is in it, and
 * every operation in it exists and answers only statuses it documents, with bodies that match.
 * (The other admin test files check every response they get against the document too.)
 */
let server: TestServer
let api: AdminContract

before(async () => {
  // Wrong keys on every route from one address: the bad-credential limit (tested in
  // rate-limits.test.ts) would refuse that flood with 429s after 20.
  server = await startTestServer({ RATE_LIMIT_CREDENTIAL_FAILURES: '0' })
  api = await adminContract(server)
})
after(() => server.close())

/**
 * `GET /path/{id}` for every route Fastify itself says the admin listener has, the operator
 * console's HTML pages (under /console, signed in by session, not by API key) set apart.
 */
async function registeredRoutes(): Promise<{ api: Set<string>; console: Set<string> }> {
  const deps = createDeps({
    config: server.config,
    db: server.database.db,
    logger: pino({ level: 'silent' }),
  })
  const app = createAdminApp(deps)
  await app.ready()
  // printRoutes draws a tree: each line is a route, its path continuing its parent's.
  const tree = app.printRoutes({ commonPrefix: false })
  await app.close()
  const routes = new Set<string>()
  const consoleRoutes = new Set<string>()
  const parents: string[] = []
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line)
    if (!m) continue
    const depth = m[1]!.length / 4
    const path = (parents[depth - 1] ?? '') + m[2]!
    parents[depth] = path
    for (const method of (m[3] ?? '').split(', ').filter((x) => x && x !== 'HEAD')) {
      const route = `${method} ${path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`
      ;(path.startsWith('/console') ? consoleRoutes : routes).add(route)
    }
  }
  return { api: routes, console: consoleRoutes }
}

function documentedRoutes(): Set<string> {
  const routes = new Set<string>()
  for (const [path, ops] of Object.entries(api.document.paths as Record<string, object>)) {
    for (const method of Object.keys(ops)) routes.add(`${method.toUpperCase()} ${path}`)
  }
  return routes
}

test('every registered admin route is documented, and every documented route is registered', async () => {
  const { api: registered, console: pages } = await registeredRoutes()
  const documented = documentedRoutes()
  // The console is there, and none of it is in the API's document.
  assert.ok(pages.has('GET /console') && pages.has('POST /console/sign-in'), [...pages].join())
  assert.ok(![...documented].some((r) => r.includes(' /console')))
  assert.ok(registered.size > 40, `found ${registered.size} routes`)
  assert.deepEqual([...registered].sort(), [...documented].sort())
  for (const route of [
    'GET /metrics',
    'GET /healthz',
    'GET /incoming-payments',
    'POST /incoming-payments/{id}/cancel',
    'POST /outgoing-payments/{id}/cancel',
    'GET /ledger/accounts/{id}/transfers',
    'GET /grants',
    'GET /rates/{base}/{quote}',
    'GET /payment-stats',
  ]) {
    assert.ok(documented.has(route), route)
  }
})

test('a route registered without an OpenAPI summary is refused at start', async () => {
  const deps = createDeps({
    config: server.config,
    db: server.database.db,
    logger: pino({ level: 'silent' }),
  })
  const app = createAdminApp(deps)
  assert.throws(
    () => app.get('/undocumented', async () => 'x'),
    /admin route GET \/undocumented has no OpenAPI summary/,
  )
  await app.close()
})

test('every documented operation answers over HTTP, with a documented status and body', async () => {
  const operations = Object.entries(api.document.paths as Record<string, Record<string, any>>)
  for (const [template, ops] of operations) {
    for (const [method, op] of Object.entries(ops)) {
      const path = template
        .replace(/\{(base|quote)\}/g, 'USD')
        .replace(/\{[^}]+\}/g, () => randomUUID())
      const res = await api.call(method.toUpperCase(), path, op.requestBody ? {} : undefined)
      assert.ok(
        !String(res.body?.error?.description ?? '').startsWith('no route for'),
        `${method} ${template} is documented but not routed`,
      )
    }
  }
  // Enough of the document was exercised to mean something.
  assert.ok(api.exercised.size >= documentedRoutes().size)
})

test('the document: OpenAPI 3.1, bearer security, public health routes, Idempotency-Key on mutations, valid schemas', async () => {
  const doc = api.document
  assert.equal(doc.openapi, '3.1.0')
  assert.deepEqual(doc.security, [{ apiKey: [] }])
  for (const path of ['/healthz', '/readyz', '/openapi.json']) {
    assert.deepEqual(doc.paths[path].get.security, [], path)
    assert.equal((await request(`${server.adminUrl}${path}`)).status, 200)
  }
  assert.equal((await request(`${server.adminUrl}/metrics`)).status, 401)
  const ajv = createAjv({ coerceTypes: false })
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(ops)) {
      assert.ok(op.summary, `${method} ${path} summary`)
      const mutation = method !== 'get'
      assert.equal(
        op.parameters?.some((p: any) => p.name === 'Idempotency-Key' && p.in === 'header') ?? false,
        mutation,
        `${method} ${path} Idempotency-Key`,
      )
      if (op.security === undefined) assert.ok(op.responses['401'], `${method} ${path} 401`)
      for (const response of Object.values(op.responses) as any[]) {
        const schema = response.content?.['application/json']?.schema
        if (schema) ajv.compile(schema)
      }
      const body = op.requestBody?.content['application/json'].schema
      if (body) ajv.compile(body)
    }
  }
})

/** Every documented operation, with its path filled in by `fill(name, schema)`. */
function operations(fill: (name: string, schema: any) => string) {
  return Object.entries(api.document.paths as Record<string, Record<string, any>>).flatMap(
    ([template, ops]) =>
      Object.entries(ops).map(([method, op]) => {
        const params = (op.parameters ?? []).filter((p: any) => p.in === 'path')
        let path = template
        for (const p of params) path = path.replace(`{${p.name}}`, fill(p.name, p.schema))
        return { method: method.toUpperCase(), template, path, op, params }
      }),
  )
}

test('bad input on every route: no key or a wrong one is 401, before anything else', async () => {
  let checked = 0
  for (const { method, path, op } of operations(() => randomUUID())) {
    if (op.security !== undefined) continue
    for (const authorization of [
      undefined,
      'Bearer wrong',
      `Bearer ${server.adminKey.slice(0, -1)}`,
    ]) {
      const res = await request(`${server.adminUrl}${path}`, {
        method,
        headers: {
          ...(authorization && { authorization }),
          ...(op.requestBody && { 'content-type': 'application/json' }),
        },
        body: op.requestBody ? '{}' : undefined,
      })
      api.check(method, path, res)
      assert.equal(res.status, 401, `${method} ${path}`)
      assert.equal(res.body.error.code, 'unauthorized')
      checked++
    }
  }
  assert.ok(checked > 100)
})

test('bad input on every route: malformed ids are 400 naming the parameter, unknown ones 404', async () => {
  const uuidParam = (schema: any) => schema?.format === 'uuid'
  for (const { method, path, template, op, params } of operations((name, schema) =>
    uuidParam(schema) ? `not-a-${name}` : 'USD',
  )) {
    const malformed = params.filter((p: any) => uuidParam(p.schema))
    if (malformed.length === 0) continue
    const res = await api.call(method, path, op.requestBody ? {} : undefined)
    assert.equal(res.status, 400, `${method} ${template}: ${JSON.stringify(res.body)}`)
    assert.equal(res.body.error.details.field, `params.${malformed[0].name}`)
    if (op.requestBody) continue // an unknown id with a valid body is each route's own test
    const unknown = template.replace(/\{[^}]+\}/g, () => randomUUID())
    const missing = await api.call(method, unknown)
    assert.equal(missing.status, 404, `${method} ${template}`)
    assert.equal(missing.body.error.code, 'not_found')
  }
})

test('bad input on every route: a body that is not JSON, or not an object, is 400', async () => {
  for (const { method, path, template, op } of operations(() => randomUUID())) {
    if (!op.requestBody) continue
    for (const [body, code] of [
      ['{"a":', 'invalid_json'],
      ['[]', 'invalid_request'],
      ['"text"', 'invalid_request'],
    ]) {
      const res = await api.call(method, path, body)
      assert.equal(res.status, 400, `${method} ${template} ${body}: ${JSON.stringify(res.body)}`)
      assert.equal(res.body.error.code, code)
    }
  }
})
