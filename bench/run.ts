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
import { streamPrepare } from '../test/helpers/ilp.ts'
import { type LoadResult, runLoad } from './load.ts'
import { measureSenderCpu } from './sender-cpu.ts'

const root = join(import.meta.dirname, '..')
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONCURRENCY = [1, 8, 32]
// BENCH_ONLY="incoming,quote": only the operations whose names contain one of these (and the
// baseline), without the sender CPU and cross-instance measurements; for iterating.
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean)
const schema = `bench_${randomBytes(4).toString('hex')}`
const port = (n: number) => 41000 + n + Math.floor(Math.random() * 1000) * 5
const base = port(0)
const ports = { op: base, auth: base + 1, admin: base + 2, baseline: base + 3, ilp: base + 4 }
// A second ASE, for the cross-instance payment.
const portsB = { op: base + 5, auth: base + 6, admin: base + 7, ilp: base + 8 }
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

const serverEnv = (p: typeof portsB, dbSchema: string, ilpAddress: string) => ({
  LOG_LEVEL: 'warn',
  // One client address at full speed: the limits are for the internet, not for a benchmark.
  RATE_LIMIT_ENABLED: 'false',
  OUTBOUND_NEW_URLS_PER_MINUTE: '0',
  DATABASE_SCHEMA: dbSchema,
  DATABASE_POOL_SIZE: '20',
  OPEN_PAYMENTS_PORT: String(p.op),
  AUTH_PORT: String(p.auth),
  ADMIN_PORT: String(p.admin),
  ILP_PORT: String(p.ilp),
  ILP_ADDRESS: ilpAddress,
  OPEN_PAYMENTS_URL: `http://127.0.0.1:${p.op}`,
  AUTH_SERVER_URL: `http://127.0.0.1:${p.auth}`,
  ADMIN_API_KEY: adminKey,
  AUTH_SECRET: randomBytes(32).toString('base64url'),
  STREAM_SECRET: randomBytes(32).toString('base64'),
  SERVER_PRIVATE_KEY: randomBytes(32).toString('base64'),
  DEV_SIGN_IN_PASSWORD: password,
  ACCESS_TOKEN_EXPIRY_SECONDS: '86400',
  DATA_DIR: join(root, 'data', 'bench'),
})
const server = await start('src/main.ts', serverEnv(ports, schema, 'test.bench-a'))
const serverB = await start('src/main.ts', serverEnv(portsB, `${schema}_b`, 'test.bench-b'))
const baseline = await start('bench/baseline-server.ts', {
  PORT: String(ports.baseline),
  PGOPTIONS: `-c search_path=${schema}`,
})

const admin = async (method: string, path: string, body?: unknown, port = ports.admin) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
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

/** The bench's client identity on a server: its wallet address with the bench key. */
async function addBenchApp(
  call: (method: string, path: string, body?: unknown) => Promise<Record<string, string>>,
) {
  const app = await call('POST', '/wallet-addresses', {
    path: '/bench-app',
    assetCode: 'USD',
    assetScale: 2,
    publicName: 'Bench',
  })
  await call('POST', `/wallet-addresses/${app.id}/keys`, {
    jwk: { kid: keyId, kty: 'OKP', crv: 'Ed25519', x: publicKey.export({ format: 'jwk' }).x },
  })
}

async function grant(
  access: unknown[],
  interact?: unknown,
  at = { op: OP, auth: AUTH },
): Promise<Record<string, any>> {
  const res = await signed(`${at.auth}/`, 'POST', '', {
    client: `${at.op}/bench-app`,
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
  await addBenchApp(admin)
  await admin('POST', `/wallet-addresses/${alice.id}/deposits`, {
    id: 'bench',
    amount: '1000000000000',
  })

  const ipToken = (
    await grant([{ type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url }])
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

  // ILP: a peer that sends us packets, and the credentials of an incoming payment on Bob.
  const peerToken = randomBytes(24).toString('base64url')
  await admin('POST', '/peers', {
    name: 'bench-peer',
    assetCode: 'USD',
    assetScale: 2,
    ilpAddress: 'test.bench-peer',
    httpEndpoint: 'http://127.0.0.1:9/ilp',
    outgoingToken: randomBytes(24).toString('base64url'),
    incomingTokens: [peerToken],
    creditLimit: '1000000000000',
  })
  const ilpTarget = (
    (await (
      await signed(`${OP}/incoming-payments`, 'POST', ipToken, { walletAddress: bob.url })
    ).json()) as {
      methods: { ilpAddress: string; sharedSecret: string }[]
    }
  ).methods[0]!

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
      name: 'get incoming payment',
      prepare: async () => {
        const send = await prepareSigned(receiver.id, 'GET', ipToken)
        return async () => (await send()).status === 200
      },
    },
    {
      name: 'wallet address GET (unauthenticated)',
      prepare: async () => async () =>
        (await fetch(bob.url!, { headers: { accept: 'application/json' } })).status === 200,
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
    {
      name: 'ILP packet received and credited (full pipeline)',
      prepare: async () => {
        const body = streamPrepare({ ...ilpTarget, amount: 1n })
        return async () => {
          const res = await fetch(`http://127.0.0.1:${ports.ilp}/ilp`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${peerToken}`,
              'content-type': 'application/octet-stream',
            },
            body,
          })
          // 13 is the type byte of an ILP Fulfill.
          return res.status === 200 && new Uint8Array(await res.arrayBuffer())[0] === 13
        }
      },
    },
  ]

  const db = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${schema}` })
  await db.connect()
  const sending = async () =>
    Number(
      (await db.query("SELECT count(*) FROM outgoing_payments WHERE state = 'sending'")).rows[0]
        .count,
    )

  // First, while the servers are idle: this process's own CPU is what is measured.
  const senderCpu = ONLY ? [] : await measureSenderCpu()
  const rows: {
    name: string
    concurrency: number
    r: LoadResult
    drainSeconds?: number
    db?: DbCounts
  }[] = []
  for (const op of ops) {
    if (ONLY && !op.name.startsWith('baseline') && !ONLY.some((w) => op.name.includes(w))) continue
    await runLoad({ concurrency: 4, seconds: 1, prepare: op.prepare }) // warm-up
    for (const concurrency of CONCURRENCY) {
      const before = await dbCounts()
      const r = await runLoad({ concurrency, seconds: SECONDS, prepare: op.prepare })
      let drainSeconds: number | undefined
      if (op.name.startsWith('create outgoing')) {
        const t = performance.now()
        while ((await sending()) > 0) await new Promise((res) => setTimeout(res, 20))
        drainSeconds = (performance.now() - t) / 1000
      }
      const after = await dbCounts()
      const perRequest = (k: keyof DbCounts) => (after[k] - before[k]) / Math.max(1, r.requests)
      const db = op.name.startsWith('baseline')
        ? undefined
        : { statements: perRequest('statements'), transactions: perRequest('transactions') }
      rows.push({ name: op.name, concurrency, r, drainSeconds, db })
      process.stderr.write(`${op.name} @${concurrency}: ${r.perSecond.toFixed(0)}/s\n`)
    }
  }
  const crossInstance = ONLY
    ? []
    : await measureCrossInstance({ alice: alice.url!, opToken, quoteToken })
  const startups = await measureStartup()
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
    '| operation | concurrency | req/s | p50 ms | p99 ms | req/s vs baseline | p50 vs baseline | errors | DB statements / req | DB transactions / req |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const { name, concurrency, r, drainSeconds, db } of rows) {
    const b = baselineAt(concurrency)
    const note =
      drainSeconds === undefined
        ? ''
        : ` (all settled ${fmt(drainSeconds, 2)} s after the last create)`
    console.log(
      `| ${name}${note} | ${concurrency} | ${fmt(r.perSecond, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.perSecond / b.perSecond, 2)}× | ${fmt(r.p50 / b.p50, 2)}× | ${r.errors} | ${db ? fmt(db.statements, 2) : '–'} | ${db ? fmt(db.transactions, 2) : '–'} |`,
    )
  }
  const b1 = baselineAt(1)
  console.log(
    `\nCross-instance payment A → B, one packet (quote with rate probe, create, sent over ILP-over-HTTP, credited at B, settled at A), one at a time, ${crossInstance.length} payments: p50 ${fmt(percentile(crossInstance, 0.5), 1)} ms, p99 ${fmt(percentile(crossInstance, 0.99), 1)} ms (${fmt(percentile(crossInstance, 0.5) / b1.p50, 1)}× the baseline's p50).`,
  )
  console.log(
    `\nStart-up to ready, the built server (\`node dist/main.js\`, every role) on PostgreSQL with migrations applied, from spawn to the first 200 from /readyz, ${startups.length} starts: median ${fmt(percentile(startups, 0.5) / 1000, 2)} s (${startups.map((t) => fmt(t / 1000, 2)).join(', ')} s).`,
  )
  console.log(
    '\nCPU per STREAM packet sent, one process, a fixed delivery in packets of 10 to the server’s STREAM receiver in process (sender and receiver together; the receiver’s share alone beside it):\n',
  )
  console.log('| sender | packets | CPU ms per packet | of which receiver | wall s |')
  console.log('|---|---:|---:|---:|---:|')
  for (const c of senderCpu) {
    console.log(
      `| ${c.name} | ${c.packets} | ${fmt(c.cpuMsPerPacket, 3)} | ${fmt(c.receiverMsPerPacket, 3)} | ${fmt(c.wallMs / 1000, 2)} |`,
    )
  }
  if (senderCpu.length === 2)
    console.log(
      `Our sender uses ${fmt(senderCpu[0]!.cpuMsPerPacket / senderCpu[1]!.cpuMsPerPacket, 1)}× less CPU per packet than pay.`,
    )
  console.log(`\nOutgoing payments not completed at the end: ${failed}`)
  if (failed > 0) process.exitCode = 1
} finally {
  server.kill('SIGTERM')
  serverB.kill('SIGTERM')
  baseline.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  const c = new pg.Client({ connectionString: DATABASE_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await c.query(`DROP SCHEMA IF EXISTS ${schema}_b CASCADE`)
  await c.end()
}

/**
 * Starts the built server on A's schema (migrations already applied) a few times, each on fresh
 * ports beside the running servers, and times spawn → /readyz 200.
 */
async function measureStartup(): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const p = { op: base + 10, auth: base + 11, admin: base + 12, ilp: base + 13 }
    const t = performance.now()
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', DATABASE_URL, ...serverEnv(p, schema, 'test.bench-c') },
      stdio: 'ignore',
    })
    try {
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${p.admin}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        )
        if (ok) break
        if (child.exitCode !== null) throw new Error(`the built server exited ${child.exitCode}`)
        await new Promise((r) => setTimeout(r, 5))
      }
      times.push(performance.now() - t)
    } finally {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
  }
  return times.sort((a, b) => a - b)
}

interface DbCounts {
  statements: number
  transactions: number
}

/** Server A's database round trips and transactions so far, from its `/metrics` (workers included). */
async function dbCounts(): Promise<DbCounts> {
  const res = await fetch(`http://127.0.0.1:${ports.admin}/metrics`, {
    headers: { authorization: `Bearer ${adminKey}` },
  })
  const text = await res.text()
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
  return {
    statements: read('op_db_statements_total'),
    transactions: read('op_db_transactions_total'),
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

/**
 * A second ASE (B), peered with A both ways: one-packet payments from Alice at A to incoming
 * payments at B, one after another, timed from the quote request to the payment's completion.
 */
async function measureCrossInstance(a: {
  alice: string
  opToken: string
  quoteToken: string
}): Promise<number[]> {
  const B = { op: `http://127.0.0.1:${portsB.op}`, auth: `http://127.0.0.1:${portsB.auth}` }
  const adminB = (method: string, path: string, body?: unknown) =>
    admin(method, path, body, portsB.admin)
  const [aToB, bToA] = [
    randomBytes(24).toString('base64url'),
    randomBytes(24).toString('base64url'),
  ]
  await adminB('POST', '/assets', { code: 'USD', scale: 2 })
  const peerBody = (address: string, port: number, out: string, inc: string) => ({
    name: address.split('.').at(-1),
    assetCode: 'USD',
    assetScale: 2,
    ilpAddress: address,
    httpEndpoint: `http://127.0.0.1:${port}/ilp`,
    outgoingToken: out,
    incomingTokens: [inc],
    creditLimit: '1000000000000',
  })
  await admin('POST', '/peers', peerBody('test.bench-b', portsB.ilp, aToB, bToA))
  await adminB('POST', '/peers', peerBody('test.bench-a', ports.ilp, bToA, aToB))
  const carol = await adminB('POST', '/wallet-addresses', {
    path: '/carol',
    assetCode: 'USD',
    assetScale: 2,
  })
  await addBenchApp(adminB)
  const ipTokenB = (
    await grant(
      [{ type: 'incoming-payment', actions: ['create'], identifier: carol.url }],
      undefined,
      B,
    )
  ).access_token.value
  const db = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${schema}` })
  await db.connect()
  const latencies: number[] = []
  const deadline = performance.now() + SECONDS * 1000
  try {
    while (performance.now() < deadline) {
      const ip = (await (
        await signed(`${B.op}/incoming-payments`, 'POST', ipTokenB, {
          walletAddress: carol.url,
          incomingAmount: { value: '100', assetCode: 'USD', assetScale: 2 },
        })
      ).json()) as { id: string }
      const t = performance.now()
      const quote = (await (
        await signed(`${OP}/quotes`, 'POST', a.quoteToken, {
          walletAddress: a.alice,
          receiver: ip.id,
          method: 'ilp',
        })
      ).json()) as { id: string }
      const created = (await (
        await signed(`${OP}/outgoing-payments`, 'POST', a.opToken, {
          walletAddress: a.alice,
          quoteId: quote.id,
        })
      ).json()) as { id: string }
      const id = created.id.split('/').at(-1)
      for (;;) {
        const { rows } = await db.query('SELECT state FROM outgoing_payments WHERE id = $1', [id])
        if (rows[0].state !== 'sending') {
          if (rows[0].state !== 'completed')
            throw new Error(`cross-instance payment ${rows[0].state}`)
          break
        }
        await new Promise((r) => setTimeout(r, 2))
      }
      latencies.push(performance.now() - t)
    }
  } finally {
    await db.end()
  }
  return latencies.sort((x, y) => x - y)
}
