/**
 * `npm run bench`: throughput and latency of the resource server's creates with signed requests,
 * the full local payment flow, outgoing payments under many grants and ILP packets credited, on
 * PostgreSQL (DATABASE_URL, default the local server), next to a bare baseline measured in the same
 * run, with the serving process's CPU time per request and its memory. Server (built, as in
 * production: `node dist/main.js`) and baseline run as child processes; this process generates
 * the load. BENCH_SECONDS sets the time per cell
 * (default 5); BENCH_ONLY=<part of a name> runs only those rows (and the baseline). docs/performance.md
 * explains each figure.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { createHeaders } from '@interledger/http-signature-utils'
import pg from 'pg'
import { consentOverHttp } from '../demo/consent.ts'
import { streamPrepare } from '../test/helpers/ilp.ts'
import { fetchOverHttp, type LoadResult, runLoad, type Sent, send } from './load.ts'
import { postgresCpuSeconds, processStats } from './proc.ts'
import { measureSenderCpu } from './sender-cpu.ts'

const root = join(import.meta.dirname, '..')
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONCURRENCY = [1, 8, 32]
/** ILP packets made before each ILP cell, per second of it: more than this machine kind credits. */
const PACKETS_PER_SECOND_STOCKED = 4000
// BENCH_ONLY="incoming,quote": only the operations whose names contain one of these (and the
// baseline), without the sender CPU and cross-instance measurements; for iterating.
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean)
// BENCH_ONLY=start-up: only the start-up row (after the baseline).
const STARTUP = 'start-up to ready'
// BENCH_ONLY=cross-instance: only the payments between two ASEs (after the baseline).
const CROSS = 'cross-instance payment'
const asked = (name: string) => !ONLY || ONLY.some((w) => name.includes(w))
const schema = `bench_${randomBytes(4).toString('hex')}`
// Below the kernel's ephemeral range (32768 and up), which the load's kept-alive client sockets
// draw from, and above the 20000-29999 of the tests' freePort.
const port = (n: number) => 30000 + n + Math.floor(Math.random() * 500) * 5
const base = port(0)
const ports = { op: base, auth: base + 1, admin: base + 2, baseline: base + 3, ilp: base + 4 }
// A second ASE, for the cross-instance payment.
const portsB = { op: base + 5, auth: base + 6, admin: base + 7, ilp: base + 8 }
const OP = `http://127.0.0.1:${ports.op}`
const AUTH = `http://127.0.0.1:${ports.auth}`
const adminKey = randomBytes(32).toString('base64url')
const password = randomBytes(12).toString('base64url')

/** Starts `node <args>` and resolves when it prints its ready line. */
function start(args: string[], env: Record<string, string>): Promise<ChildProcess> {
  // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to profile the processes.
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child)
    })
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)))
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
// The servers run as production does: the bundle `npm run build` leaves in dist/ (`npm run bench`
// builds first).
const server = await start(['dist/main.js'], serverEnv(ports, schema, 'test.bench-a'))
const serverB = await start(['dist/main.js'], serverEnv(portsB, `${schema}_b`, 'test.bench-b'))
const baseline = await start(['--import', 'tsx', 'bench/baseline-server.ts'], {
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

const usd = (value: string) => ({ value, assetCode: 'USD', assetScale: 2 })
const { publicKey, privateKey } = generateKeyPairSync('ed25519')
const keyId = 'bench-key'

/** A request's headers and body, signed as the official client signs them. */
async function signRequest(url: string, method: string, token: string, body?: unknown) {
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
  return { headers, text }
}

/** A measured request, signed before the clock starts, ready to send. */
async function prepareSigned(
  url: string,
  method: string,
  token: string,
  body?: unknown,
): Promise<() => Promise<Sent>> {
  const { headers, text } = await signRequest(url, method, token, body)
  const withLength = { ...headers, 'content-length': text ? Buffer.byteLength(text) : 0 }
  return () => send(url, { method, headers: withLength, body: text })
}

/**
 * A signed request answered as a fetch Response, sent by the bench's sender: the set-up's, and
 * the full local flow's (whose latency it is part of).
 */
const signed = async (url: string, method: string, token: string, body?: unknown) => {
  const { headers, text } = await signRequest(url, method, token, body)
  return fetchOverHttp(url, { method, headers, body: text })
}

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

/** An interactive outgoing-payment grant on `walletUrl`: request, consent, continuation; its token. */
async function interactiveGrant(walletUrl: string): Promise<string> {
  const pending = await grant(
    [{ type: 'outgoing-payment', actions: ['create'], identifier: walletUrl }],
    {
      start: ['redirect'],
      finish: { method: 'redirect', uri: 'http://127.0.0.1:9/cb', nonce: 'n' },
    },
  )
  const finish = await consentOverHttp({
    redirect: pending.interact.redirect,
    walletAddress: walletUrl,
    password,
    decision: 'accept',
    fetch: fetchOverHttp,
  })
  const cont = await signed(pending.continue.uri, 'POST', pending.continue.access_token.value, {
    interact_ref: finish.searchParams.get('interact_ref'),
  })
  const json = (await cont.json()) as Record<string, any>
  if (!cont.ok) throw new Error(`continuation: ${cont.status} ${JSON.stringify(json)}`)
  return json.access_token.value as string
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
  const opToken = await interactiveGrant(alice.url!)
  const createIp = async (walletAddress: string, incomingAmount?: string, token = ipToken) => {
    const res = await signed(`${OP}/incoming-payments`, 'POST', token, {
      walletAddress,
      ...(incomingAmount && { incomingAmount: usd(incomingAmount) }),
    })
    if (res.status !== 201) throw new Error(`incoming payment: ${res.status} ${await res.text()}`)
    return (await res.json()) as {
      id: string
      methods: { ilpAddress: string; sharedSecret: string }[]
    }
  }
  const receiver = await createIp(bob.url!)

  // 32 senders, each under its own grant, paying its own receiver: payments that share no row of
  // their own, so what still serialises them is the server's.
  const anyIpToken = (await grant([{ type: 'incoming-payment', actions: ['create'] }])).access_token
    .value as string
  const pairs = await Promise.all(
    Array.from({ length: 32 }, async (_, i) => {
      const sender = await admin('POST', '/wallet-addresses', {
        path: `/sender-${i}`,
        assetCode: 'USD',
        assetScale: 2,
      })
      const to = await admin('POST', '/wallet-addresses', {
        path: `/receiver-${i}`,
        assetCode: 'USD',
        assetScale: 2,
      })
      await admin('POST', `/wallet-addresses/${sender.id}/deposits`, {
        id: `bench-${i}`,
        amount: '1000000000000',
      })
      return {
        sender: sender.url!,
        token: await interactiveGrant(sender.url!),
        incomingPayment: (await createIp(to.url!, undefined, anyIpToken)).id,
      }
    }),
  )

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
  const ilpTarget = (await createIp(bob.url!)).methods[0]!
  const ilpTargets = await Promise.all(
    Array.from({ length: 100 }, async () => (await createIp(bob.url!)).methods[0]!),
  )
  let nextTarget = 0
  // A peer makes its packets (STREAM's encryption, the condition) on its own machine: here they are
  // made before each ILP cell (`restock`), so that the load generator's cryptography does not take
  // the cores the servers share while the cell runs. A cell that uses more than were made makes the
  // rest as it goes, and its progress line says how many.
  const stock = new Map<string, Buffer[]>()
  let madeDuringCell = 0
  const restock = (targets: { ilpAddress: string; sharedSecret: string }[]) => {
    stock.clear()
    madeDuringCell = 0
    const expiresAt = new Date(Date.now() + SECONDS * 1000 + 30_000)
    for (let i = 0; i < PACKETS_PER_SECOND_STOCKED * SECONDS; i++) {
      const target = targets[i % targets.length]!
      const packets = stock.get(target.ilpAddress) ?? []
      packets.push(streamPrepare({ ...target, amount: 1n, expiresAt }))
      stock.set(target.ilpAddress, packets)
    }
  }
  const sendPacket = (target: { ilpAddress: string; sharedSecret: string }) => {
    let body = stock.get(target.ilpAddress)?.pop()
    if (!body) {
      madeDuringCell++
      body = streamPrepare({ ...target, amount: 1n })
    }
    const headers = {
      authorization: `Bearer ${peerToken}`,
      'content-type': 'application/octet-stream',
      'content-length': body.length,
    }
    return async () => {
      const res = await send(`http://127.0.0.1:${ports.ilp}/ilp`, { method: 'POST', headers, body })
      // 13 is the type byte of an ILP Fulfill.
      return res.status === 200 && res.firstByte === 13
    }
  }

  const db = new pg.Pool({
    connectionString: DATABASE_URL,
    options: `-c search_path=${schema}`,
    max: 4,
  })
  // The full local flow, as a client runs it, timed until the incoming payment is completed (seen
  // by polling the database every millisecond); the last stretch, from the outgoing payment's
  // create on, is collected apart.
  let settleTimes: number[] = []
  // From the create's 201 to the completion: what settlement adds once the create has answered.
  let afterCreateTimes: number[] = []
  const localFlow = async () => {
    const ip = await createIp(bob.url!, '100')
    const quote = await signed(`${OP}/quotes`, 'POST', quoteToken, {
      walletAddress: alice.url,
      receiver: ip.id,
      method: 'ilp',
    })
    if (quote.status !== 201) return false
    const token = await interactiveGrant(alice.url!)
    const create = await prepareSigned(`${OP}/outgoing-payments`, 'POST', token, {
      walletAddress: alice.url,
      quoteId: ((await quote.json()) as { id: string }).id,
    })
    // Timed from the request leaving, as every row is: the signing before it is the client's.
    const t = performance.now()
    if ((await create()).status !== 201) return false
    const answered = performance.now()
    const id = ip.id.split('/').at(-1)
    while (
      (await db.query('SELECT completed_at FROM incoming_payments WHERE id = $1', [id])).rows[0]
        .completed_at === null
    ) {
      await new Promise((r) => setTimeout(r, 1))
    }
    settleTimes.push(performance.now() - t)
    afterCreateTimes.push(performance.now() - answered)
    return true
  }
  const created = (prepared: Promise<() => Promise<Sent>>) => async () => {
    const send = await prepared
    return async () => (await send()).status === 201
  }
  const ops: {
    name: string
    prepare: (caller: number) => Promise<() => Promise<boolean>>
    concurrency?: number[]
    /** The process that serves it, whose CPU time is counted. */
    pid?: number
    /**
     * Each caller signs its request once per cell and sends those bytes again and again: the
     * server verifies every copy in full (Open Payments signatures carry no nonce, and nothing
     * caches a verification), while the load generator's Ed25519 signing, up to a millisecond of
     * CPU per request, no longer takes the two cores from the server and PostgreSQL.
     */
    signOnce?: boolean
    /** Runs before each of its cells, outside the measurement (the ILP rows make their packets). */
    before?: () => void
  }[] = [
    {
      name: 'baseline: bare INSERT route',
      pid: baseline.pid,
      prepare: async () => {
        const body = JSON.stringify({ walletAddress: bob.url })
        const headers = { 'content-type': 'application/json', 'content-length': body.length }
        const url = `http://127.0.0.1:${ports.baseline}/baseline`
        return async () => (await send(url, { method: 'POST', headers, body })).status === 201
      },
    },
    {
      name: 'create incoming payment',
      signOnce: true,
      prepare: () =>
        created(
          prepareSigned(`${OP}/incoming-payments`, 'POST', ipToken, { walletAddress: bob.url }),
        )(),
    },
    {
      name: 'get incoming payment',
      signOnce: true,
      prepare: async () => {
        const send = await prepareSigned(receiver.id, 'GET', ipToken)
        return async () => (await send()).status === 200
      },
    },
    {
      name: 'wallet address GET (unauthenticated)',
      prepare: async () => async () =>
        (await send(bob.url!, { method: 'GET', headers: { accept: 'application/json' } }))
          .status === 200,
    },
    {
      name: 'create quote',
      signOnce: true,
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
      signOnce: true,
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
      name: 'create outgoing payment (local, completed), 32 senders under 32 grants',
      signOnce: true,
      concurrency: [32],
      prepare: (caller) => {
        const pair = pairs[caller % pairs.length]!
        return created(
          prepareSigned(`${OP}/outgoing-payments`, 'POST', pair.token, {
            walletAddress: pair.sender,
            incomingPayment: pair.incomingPayment,
            debitAmount: usd('100'),
          }),
        )()
      },
    },
    {
      name: 'full local flow (IP, quote, interactive grant, consent, continuation, OP, until IP completed)',
      concurrency: [1, 4],
      prepare: async () => localFlow,
    },
    {
      name: 'ILP packet received and credited into one incoming payment (full pipeline)',
      // 64 too: a peer (a connector) carries many senders' packets, and bigger batches share more.
      concurrency: [1, 8, 32, 64],
      prepare: async () => sendPacket(ilpTarget),
      before: () => restock([ilpTarget]),
    },
    {
      name: 'ILP packet credited, spread over 100 incoming payments',
      concurrency: [8, 32],
      prepare: async () => sendPacket(ilpTargets[nextTarget++ % ilpTargets.length]!),
      before: () => restock(ilpTargets),
    },
  ]
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
    cpuMs?: number
    pgCpuMs?: number
    settle?: { p50: number; afterAnswer: number }
    db?: DbCounts
  }[] = []
  for (const op of ops) {
    if (
      ONLY &&
      !op.name.startsWith('baseline') &&
      !op.pid &&
      !ONLY.some((w) => op.name.includes(w))
    )
      continue
    await runLoad({ concurrency: 4, seconds: 1, prepare: op.prepare }) // warm-up
    for (const concurrency of op.concurrency ?? CONCURRENCY) {
      op.before?.()
      settleTimes = []
      afterCreateTimes = []
      const pid = op.pid ?? server.pid!
      const cpuBefore = processStats(pid)?.cpuSeconds
      const pgBefore = postgresCpuSeconds()
      const before = await dbCounts()
      const ownCpu = process.cpuUsage()
      const signed = new Map<number, Promise<() => Promise<boolean>>>()
      const prepare = op.signOnce
        ? (caller: number) => {
            if (!signed.has(caller)) signed.set(caller, op.prepare(caller))
            return signed.get(caller)!
          }
        : op.prepare
      const r = await runLoad({ concurrency, seconds: SECONDS, prepare })
      const { user, system } = process.cpuUsage(ownCpu)
      let drainSeconds: number | undefined
      if (op.name.startsWith('create outgoing')) {
        const t = performance.now()
        while ((await sending()) > 0) await new Promise((res) => setTimeout(res, 20))
        drainSeconds = (performance.now() - t) / 1000
      }
      const cpuAfter = processStats(pid)?.cpuSeconds
      const pgAfter = postgresCpuSeconds()
      const perRequestMs = (from: number | undefined, to: number | undefined) =>
        from === undefined || to === undefined ? undefined : ((to - from) * 1000) / r.requests
      const cpuMs = perRequestMs(cpuBefore, cpuAfter)
      const pgCpuMs = perRequestMs(pgBefore, pgAfter)
      settleTimes.sort((x, y) => x - y)
      afterCreateTimes.sort((x, y) => x - y)
      const settle =
        settleTimes.length > 0
          ? { p50: percentile(settleTimes, 0.5), afterAnswer: percentile(afterCreateTimes, 0.5) }
          : undefined
      const after = await dbCounts()
      const perRequest = (k: keyof DbCounts) => (after[k] - before[k]) / Math.max(1, r.requests)
      const db = op.pid
        ? undefined
        : { statements: perRequest('statements'), transactions: perRequest('transactions') }
      rows.push({ name: op.name, concurrency, r, drainSeconds, cpuMs, pgCpuMs, settle, db })
      // Whether the load generator, on the same cores, could be what limits the row.
      const loadCpu = (user + system) / 1000 / Math.max(1, r.requests)
      process.stderr.write(
        `${op.name} @${concurrency}: ${r.perSecond.toFixed(0)}/s, load generator CPU ${loadCpu.toFixed(2)} ms/req${
          op.before && madeDuringCell > 0 ? `, ${madeDuringCell} packets made during the cell` : ''
        }\n`,
      )
    }
  }
  const crossInstance = asked(CROSS)
    ? await measureCrossInstance({ alice: alice.url!, opToken, quoteToken })
    : undefined
  const startups = asked(STARTUP) ? await measureStartup() : undefined
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
    '| operation | concurrency | req/s | p50 ms | p99 ms | req/s vs baseline | p50 vs baseline | server CPU ms/req | PostgreSQL CPU ms/req | DB statements / req | DB transactions / req | errors |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const { name, concurrency, r, drainSeconds, cpuMs, pgCpuMs, settle, db } of rows) {
    // The baseline runs at 1, 8 and 32; a row at another concurrency is set next to the nearest.
    const b = baselineAt(
      CONCURRENCY.reduce((x, y) => (Math.abs(y - concurrency) < Math.abs(x - concurrency) ? y : x)),
    )
    const notes = [
      drainSeconds !== undefined && `all settled ${fmt(drainSeconds, 2)} s after the last create`,
      settle !== undefined &&
        `OP create → IP completed p50 ${fmt(settle.p50, 2)} ms, of which after the create's answer ${fmt(settle.afterAnswer, 2)} ms`,
    ].filter(Boolean)
    const note = notes.length > 0 ? ` (${notes.join('; ')})` : ''
    const dbCell = (v: number | undefined) => (v === undefined ? '–' : fmt(v, 2))
    console.log(
      `| ${name}${note} | ${concurrency} | ${fmt(r.perSecond, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.perSecond / b.perSecond, 2)}× | ${fmt(r.p50 / b.p50, 2)}× | ${cpuMs === undefined ? '–' : fmt(cpuMs, 2)} | ${pgCpuMs === undefined ? '–' : fmt(pgCpuMs, 2)} | ${dbCell(db?.statements)} | ${dbCell(db?.transactions)} | ${r.errors} |`,
    )
  }
  const mem = processStats(server.pid!)
  const memB = processStats(baseline.pid!)
  if (mem && memB)
    console.log(
      `\nServer RSS at the end ${fmt(mem.rssMiB, 0)} MiB, peak ${fmt(mem.peakRssMiB, 0)} MiB; baseline ${fmt(memB.rssMiB, 0)} MiB, peak ${fmt(memB.peakRssMiB, 0)} MiB.`,
    )
  const b1 = baselineAt(1)
  if (startups) {
    const { wall, cpu } = startups
    console.log(
      `\nStart-up to ready, the built server (\`node dist/main.js\`, every role) on PostgreSQL with migrations applied, from spawn to the first 200 from /readyz, ${wall.length} starts: median ${fmt(percentile(wall, 0.5) / 1000, 2)} s (${wall.map((t) => fmt(t / 1000, 2)).join(', ')} s); the server's CPU until then, median ${cpu.length ? `${fmt(percentile(cpu, 0.5), 0)} ms (${cpu.map((t) => fmt(t, 0)).join(', ')} ms)` : '–'}.`,
    )
  }
  if (crossInstance) {
    const { total, quote, create, settle } = crossInstance
    const p50 = (times: number[]) => fmt(percentile(times, 0.5), 1)
    console.log(
      `\nCross-instance payment A → B, one packet (quote with rate probe, create, sent over ILP-over-HTTP, credited at B, settled at A), one at a time, ${total.length} payments: p50 ${p50(total)} ms, p99 ${fmt(percentile(total, 0.99), 1)} ms (${fmt(percentile(total, 0.5) / b1.p50, 1)}× the baseline's p50); p50 of its parts: the quote ${p50(quote)} ms, the create ${p50(create)} ms, from the create's answer to completed ${p50(settle)} ms.`,
    )
  }
  if (!ONLY) {
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
    console.log(
      `Our sender uses ${fmt(senderCpu[0]!.cpuMsPerPacket / senderCpu[1]!.cpuMsPerPacket, 1)}× less CPU per packet than pay.`,
    )
  }
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
 * ports beside the running servers, and times spawn → /readyz 200; also the CPU the process spent
 * until then (user + system, from /proc: less dependent on what else the machine runs than the
 * wall time).
 */
async function measureStartup(): Promise<{ wall: number[]; cpu: number[] }> {
  const times: number[] = []
  const cpu: number[] = []
  for (let i = 0; i < 5; i++) {
    const p = { op: base + 10, auth: base + 11, admin: base + 12, ilp: base + 13 }
    const t = performance.now()
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', DATABASE_URL, ...serverEnv(p, schema, 'test.bench-c') },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    // Registered now: a server that fails to start has exited before the `finally` below.
    const exited = new Promise((r) => child.once('exit', r))
    try {
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${p.admin}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        )
        if (ok) break
        if (child.exitCode !== null)
          throw new Error(`the built server exited ${child.exitCode}: ${stderr}`)
        if (performance.now() - t > 60_000)
          throw new Error(`the built server is not ready: ${stderr}`)
        await new Promise((r) => setTimeout(r, 5))
      }
      times.push(performance.now() - t)
      const stats = processStats(child.pid!)
      if (stats) cpu.push(stats.cpuSeconds * 1000)
    } finally {
      child.kill('SIGTERM')
      await exited
    }
  }
  const ascending = (a: number, b: number) => a - b
  return { wall: times.sort(ascending), cpu: cpu.sort(ascending) }
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
}): Promise<{ total: number[]; quote: number[]; create: number[]; settle: number[] }> {
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
  const times = {
    total: [] as number[],
    quote: [] as number[],
    create: [] as number[],
    settle: [] as number[],
  }
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
      const quoted = performance.now()
      const created = (await (
        await signed(`${OP}/outgoing-payments`, 'POST', a.opToken, {
          walletAddress: a.alice,
          quoteId: quote.id,
        })
      ).json()) as { id: string }
      const answered = performance.now()
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
      const done = performance.now()
      times.total.push(done - t)
      times.quote.push(quoted - t)
      times.create.push(answered - quoted)
      times.settle.push(done - answered)
    }
  } finally {
    await db.end()
  }
  for (const list of Object.values(times)) list.sort((x, y) => x - y)
  return times
}
