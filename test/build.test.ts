/**
 * The production build (`npm run build`, which `npm test` runs first) bundles the server and
 * precompiles the route validators and response serializers (scripts/build.ts). Every other test
 * runs the source, where the schemas are compiled at start: here the built server and the source
 * answer the same requests, invalid ones above all, with the same status and body.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { DATABASE_URL, dropSchema } from './helpers/db.ts'
import { killAll, type ServerProcess, spawnServer, stop, waitReady } from './helpers/process.ts'
import { freePort, request } from './helpers/server.ts'

const schemas = [`b_${randomBytes(6).toString('hex')}`, `b_${randomBytes(6).toString('hex')}`]
after(async () => {
  killAll()
  for (const s of schemas) await dropSchema(s)
})

const key = randomBytes(32).toString('base64url')
const deposits = '/wallet-addresses/00000000-0000-4000-8000-000000000000/deposits'

/** [listener, method, path, body]: bodies, query strings and path parameters, valid and not. */
const requests: [listener: 'admin' | 'auth' | 'op', method: string, path: string, body?: string][] =
  [
    ['admin', 'POST', '/assets', '{"code":"USD","scale":2}'],
    ['admin', 'POST', '/assets', '{"code":"EUR","scale":"2"}'],
    ['admin', 'POST', '/assets', '{"code":"EUR"}'],
    ['admin', 'POST', '/assets', '{"code":"EUR","scale":2,"extra":1}'],
    ['admin', 'POST', '/wallet-addresses', '{"path":"/a/../b","assetCode":"USD","assetScale":2}'],
    ['admin', 'GET', '/wallet-addresses?first=0'],
    ['admin', 'GET', '/wallet-addresses?first=abc'],
    ['admin', 'GET', '/wallet-addresses?first=5'],
    ['admin', 'POST', '/wallet-addresses', '{"path":"/alice","assetCode":"USD","assetScale":2}'],
    ['admin', 'GET', '/wallet-addresses?first=5'],
    ['admin', 'GET', '/assets'],
    ['op', 'GET', '/alice'],
    ['op', 'GET', '/alice/jwks.json'],
    ['op', 'GET', '/nobody'],
    ['admin', 'POST', '/wallet-addresses/alice/deposits', '{"id":"x","amount":"1"}'],
    ['admin', 'POST', deposits, '{"id":"x","amount":5}'],
    ['admin', 'POST', deposits, '{"id":"x","amount":"-1"}'],
    ['admin', 'POST', deposits, '{"id":"x","amount":"18446744073709551616"}'],
    ['admin', 'POST', deposits, '{"id":"x","amount":"1"}'],
    ['auth', 'POST', '/', '{}'],
    ['auth', 'POST', '/', '{"access_token":5,"client":"https://example.com/alice"}'],
  ]

async function start(build: boolean, schema: string) {
  const env = {
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
    ADMIN_API_KEY: key,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'op-build-test-')),
    OPEN_PAYMENTS_PORT: String(await freePort()),
    AUTH_PORT: String(await freePort()),
    ADMIN_PORT: String(await freePort()),
    ILP_PORT: String(await freePort()),
  }
  const server = spawnServer(env, { build })
  await waitReady(server)
  return { server, env }
}

async function answers(env: Record<string, string>) {
  const out = []
  for (const [listener, method, path, body] of requests) {
    const port = { admin: env.ADMIN_PORT, auth: env.AUTH_PORT, op: env.OPEN_PAYMENTS_PORT }[
      listener
    ]
    const res = await request(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body }),
    })
    // Ids, times and ports differ between the two servers; nothing else may.
    const shown = JSON.stringify(res.body ?? null)
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
      .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>')
      .replace(/127\.0\.0\.1:\d+|localhost:\d+/g, '<host>')
    out.push({ status: res.status, body: shown })
  }
  return out
}

test('the built server validates requests exactly as the source does', async () => {
  const started: ServerProcess[] = []
  try {
    const built = await start(true, schemas[0]!)
    started.push(built.server)
    const source = await start(false, schemas[1]!)
    started.push(source.server)
    const fromBuild = await answers(built.env)
    assert.deepEqual(fromBuild, await answers(source.env))
    // The requests do reach validation: most are refused, each for its own reason.
    assert.ok(fromBuild.filter((a) => a.status === 400).length >= 10, JSON.stringify(fromBuild))
  } finally {
    for (const s of started) assert.equal(await stop(s), 0)
  }
})
