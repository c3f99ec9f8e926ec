/**
 * `npm run bench`: throughput and latency of the resource server's creates with signed requests,
 * on PostgreSQL (DATABASE_URL, default the local server), at concurrency 1, 8 and 32, next to a
 * bare baseline measured in the same run. Server and baseline run as child processes; this
 * process generates the load. BENCH_SECONDS sets the time per cell (default 5).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { createHeaders } from '@interledger/http-signature-utils'
import pg from 'pg'
import { consentOverHttp } from '../demo/consent.ts'
import { type LoadResult, runLoad } from './load.ts'

const root = join(import.meta.dirname, '..')
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONCURRENCY = [1, 8, 32]
const schema = `bench_${randomBytes(4).toString('hex')}`
const port = (n: number) => 41000 + n + Math.floor(Math.random() * 1000) * 5
const base = port(0)
const ports = { op: base, auth: base + 1, admin: base + 2, baseline: base + 3 }
const OP = `http://127.0.0.1:${ports.op}`
const AUTH = `http://127.0.0.1:${ports.auth}`
const adminKey = randomBytes(32).toString('base64url')
const password = randomBytes(12).toString('base64url')

function start(script: string, env: Record<string, string>): Promise<ChildProcess> {
  // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to profile the processes.
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child)
    })
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}`)))
  })
}

const server = await start('src/main.ts', {
  LOG_LEVEL: 'warn',
  DATABASE_SCHEMA: schema,
  DATABASE_POOL_SIZE: '20',
  OPEN_PAYMENTS_PORT: String(ports.op),
  AUTH_PORT: String(ports.auth),
  ADMIN_PORT: String(ports.admin),
  OPEN_PAYMENTS_URL: OP,
  AUTH_SERVER_URL: AUTH,
  ADMIN_API_KEY: adminKey,
  AUTH_SECRET: randomBytes(32).toString('base64url'),
  STREAM_SECRET: randomBytes(32).toString('base64'),
  DEV_SIGN_IN_PASSWORD: password,
  ACCESS_TOKEN_EXPIRY_SECONDS: '86400',
  DATA_DIR: join(root, 'data', 'bench'),
})
const baseline = await start('bench/baseline-server.ts', {
  PORT: String(ports.baseline),
  PGOPTIONS: `-c search_path=${schema}`,
})

const admin = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`http://127.0.0.1:${ports.admin}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  return res.json() as Promise<Record<string, string>>
}

const { publicKey, privateKey } = generateKeyPairSync('ed25519')
const keyId = 'bench-key'

/** A request signed as the official client signs it, ready to send. */
async function prepareSigned(
  url: string,
  method: string,
  token: string,
  body?: unknown,
): Promise<() => Promise<Response>> {
  const text = body === undefined ? undefined : JSON.stringify(body)
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(token && { authorization: `GNAP ${token}` }),
  }
  const sig = await createHeaders({
    request: { method, url, headers, ...(text && { body: text }) },
    privateKey,
    keyId,
  })
  // Lower-cased: fetch would join `content-type` and `Content-Type` into one doubled value.
  for (const [k, v] of Object.entries(sig)) if (v !== undefined) headers[k.toLowerCase()] = v
  return () => fetch(url, { method, headers, body: text })
}

const signed = async (url: string, method: string, token: string, body?: unknown) =>
  (await prepareSigned(url, method, token, body))()

async function grant(access: unknown[], interact?: unknown): Promise<Record<string, any>> {
  const res = await signed(`${AUTH}/`, 'POST', '', {
    client: `${OP}/bench-app`,
    access_token: { access },
    ...(interact ? { interact } : {}),
  })
  const json = (await res.json()) as Record<string, any>
  if (!res.ok) throw new Error(`grant: ${res.status} ${JSON.stringify(json)}`)
  return json
}

try {
  await admin('POST', '/assets', { code: 'USD', scale: 2 })
  const alice = await admin('POST', '/wallet-addresses', {
    path: '/alice',
    assetCode: 'USD',
    assetScale: 2,
  })
  const bob = await admin('POST', '/wallet-addresses', {
    path: '/bob',
    assetCode: 'USD',
    assetScale: 2,
  })
  const app = await admin('POST', '/wallet-addresses', {
    path: '/bench-app',
    assetCode: 'USD',
    assetScale: 2,
    publicName: 'Bench',
  })
  await admin('POST', `/wallet-addresses/${app.id}/keys`, {
    jwk: { kid: keyId, kty: 'OKP', crv: 'Ed25519', x: publicKey.export({ format: 'jwk' }).x },
  })
  await admin('POST', `/wallet-addresses/${alice.id}/deposits`, {
    id: 'bench',
    amount: '1000000000000',
  })

  const ipToken = (
    await grant([{ type: 'incoming-payment', actions: ['create'], identifier: bob.url }])
  ).access_token.value
  const quoteToken = (await grant([{ type: 'quote', actions: ['create'] }])).access_token.value
  const pending = await grant(
    [{ type: 'outgoing-payment', actions: ['create'], identifier: alice.url }],
    {
      start: ['redirect'],
      finish: { method: 'redirect', uri: 'http://127.0.0.1:9/cb', nonce: 'n' },
    },
  )
  const finish = await consentOverHttp({
    redirect: pending.interact.redirect,
    walletAddress: alice.url!,
    password,
    decision: 'accept',
  })
  const cont = await signed(pending.continue.uri, 'POST', pending.continue.access_token.value, {
    interact_ref: finish.searchParams.get('interact_ref'),
  })
  const opToken = ((await cont.json()) as Record<string, any>).access_token.value as string
  const receiver = (await (
    await signed(`${OP}/incoming-payments`, 'POST', ipToken, { walletAddress: bob.url })
  ).json()) as { id: string }

  const usd = (value: string) => ({ value, assetCode: 'USD', assetScale: 2 })
  const created = (prepared: Promise<() => Promise<Response>>) => async () => {
    const send = await prepared
    return async () => (await send()).status === 201
  }
  const ops: { name: string; prepare: () => Promise<() => Promise<boolean>> }[] = [
    {
      name: 'baseline: bare INSERT route',
      prepare: async () => async () =>
        (
          await fetch(`http://127.0.0.1:${ports.baseline}/baseline`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ walletAddress: bob.url }),
          })
        ).status === 201,
    },
    {
      name: 'create incoming payment',
      prepare: () =>
        created(
          prepareSigned(`${OP}/incoming-payments`, 'POST', ipToken, { walletAddress: bob.url }),
        )(),
    },
    {
      name: 'create quote',
      prepare: () =>
        created(
          prepareSigned(`${OP}/quotes`, 'POST', quoteToken, {
            walletAddress: alice.url,
            receiver: receiver.id,
            method: 'ilp',
            debitAmount: usd('100'),
          }),
        )(),
    },
    {
      name: 'create outgoing payment (local, completed)',
      prepare: () =>
        created(
          prepareSigned(`${OP}/outgoing-payments`, 'POST', opToken, {
            walletAddress: alice.url,
            incomingPayment: receiver.id,
            debitAmount: usd('100'),
          }),
        )(),
    },
  ]

  const db = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${schema}` })
  await db.connect()
  const sending = async () =>
    Number(
      (await db.query("SELECT count(*) FROM outgoing_payments WHERE state = 'sending'")).rows[0]
        .count,
    )

  const rows: { name: string; concurrency: number; r: LoadResult; drainSeconds?: number }[] = []
  for (const op of ops) {
    await runLoad({ concurrency: 4, seconds: 1, prepare: op.prepare }) // warm-up
    for (const concurrency of CONCURRENCY) {
      const r = await runLoad({ concurrency, seconds: SECONDS, prepare: op.prepare })
      let drainSeconds: number | undefined
      if (op.name.startsWith('create outgoing')) {
        const t = performance.now()
        while ((await sending()) > 0) await new Promise((res) => setTimeout(res, 20))
        drainSeconds = (performance.now() - t) / 1000
      }
      rows.push({ name: op.name, concurrency, r, drainSeconds })
      process.stderr.write(`${op.name} @${concurrency}: ${r.perSecond.toFixed(0)}/s\n`)
    }
  }
  const failed = Number(
    (await db.query("SELECT count(*) FROM outgoing_payments WHERE state <> 'completed'")).rows[0]
      .count,
  )
  await db.end()

  const baselineAt = (c: number) =>
    rows.find((x) => x.name.startsWith('baseline') && x.concurrency === c)!.r
  const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–')
  console.log(
    `\nMachine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${SECONDS} s per cell; server and baseline each one process, load generated by a third.\n`,
  )
  console.log(
    '| operation | concurrency | req/s | p50 ms | p99 ms | req/s vs baseline | p50 vs baseline | errors |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const { name, concurrency, r, drainSeconds } of rows) {
    const b = baselineAt(concurrency)
    const note =
      drainSeconds === undefined
        ? ''
        : ` (all settled ${fmt(drainSeconds, 2)} s after the last create)`
    console.log(
      `| ${name}${note} | ${concurrency} | ${fmt(r.perSecond, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.perSecond / b.perSecond, 2)}× | ${fmt(r.p50 / b.p50, 2)}× | ${r.errors} |`,
    )
  }
  console.log(`\nOutgoing payments not completed at the end: ${failed}`)
  if (failed > 0) process.exitCode = 1
} finally {
  server.kill('SIGTERM')
  baseline.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  const c = new pg.Client({ connectionString: DATABASE_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await c.end()
}
