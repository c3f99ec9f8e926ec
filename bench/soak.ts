/**
 * `npm run soak`: the server's memory under minutes of sustained signed load, to show that it
 * levels off. The server runs compiled (`dist/`, as in production) as a child process on PostgreSQL
 * (DATABASE_URL, default the local server) with rate limits on but set out of reach, so their
 * bookkeeping runs too; this process generates the load: closed loop, SOAK_CONCURRENCY callers
 * (default 8), each repeating a whole flow (wallet address read, grant request, incoming payment
 * create and read, list, quote, outgoing payment, ILP packet) for SOAK_SECONDS (default 180).
 * Every SOAK_SAMPLE_SECONDS (default 10) it records the resident set (RSS, from /proc) and the
 * JavaScript heap left after the last full garbage collection (V8's `--trace-gc`), the figure that
 * grows when something leaks; RSS also follows the collector's sawtooth and the allocator.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import pg from 'pg'
import {
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
  signedRequest,
} from '../test/helpers/clients.ts'
import { asTestServer, clusterEnv, nodePorts, startNode } from '../test/helpers/cluster.ts'
import { DATABASE_URL } from '../test/helpers/db.ts'
import { postIlp, streamPrepare } from '../test/helpers/ilp.ts'
import { killAll } from '../test/helpers/process.ts'
import { createWalletAddress, deposit, request } from '../test/helpers/server.ts'

const SECONDS = Number(process.env.SOAK_SECONDS ?? 180)
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 8)
const SAMPLE_SECONDS = Number(process.env.SOAK_SAMPLE_SECONDS ?? 10)
const schema = `soak_${randomBytes(4).toString('hex')}`

const ports = await nodePorts()
const node = await startNode(
  'soak',
  clusterEnv({
    schema,
    openPaymentsUrl: `http://127.0.0.1:${ports.op}`,
    authUrl: `http://127.0.0.1:${ports.auth}`,
  }),
  ports,
  {
    LOG_LEVEL: 'warn',
    DATABASE_POOL_SIZE: '10',
    ACCESS_TOKEN_EXPIRY_SECONDS: '86400',
    RATE_LIMIT_IP_PER_MINUTE: '100000000',
    RATE_LIMIT_CLIENT_PER_MINUTE: '100000000',
    RATE_LIMIT_ILP_PACKETS_PER_SECOND: '1000000',
  },
  { build: true, nodeArgs: ['--trace-gc', '--trace-gc-ignore-scavenger'] },
)
const pid = node.process.child.pid!
const rssMiB = () => {
  const kB = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  return kB / 1024
}
/** Heap in use after the latest full (mark-compact) collection, in MB as V8 prints it. */
const heapAfterFullGc = () => {
  const all = [...node.process.output().matchAll(/Mark-Compact[^\n]*?-> ([\d.]+) \(/g)]
  return all.length ? Number(all.at(-1)![1]) : Number.NaN
}
const fullGcs = () => node.process.output().match(/Mark-Compact/g)?.length ?? 0

try {
  const server = asTestServer(node)
  const app = await createClientIdentity(server, { path: '/soak-app' })
  const alice = await createWalletAddress(server, { path: '/alice' })
  const bob = await createWalletAddress(server, { path: '/bob' })
  await deposit(server, alice.id, 10n ** 15n)
  const peer = { token: randomBytes(24).toString('base64url') }
  const added = await server.admin('POST', '/peers', {
    name: 'soak-peer',
    assetCode: 'USD',
    assetScale: 2,
    ilpAddress: 'test.soak-peer',
    httpEndpoint: 'http://127.0.0.1:9/ilp',
    outgoingToken: randomBytes(24).toString('base64url'),
    incomingTokens: [peer.token],
    creditLimit: (10n ** 15n).toString(),
  })
  if (added.status !== 201) throw new Error(`add peer: ${added.status}`)
  const ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read', 'list'], identifier: bob.url },
  ])
  const quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  const opToken = await outgoingPaymentToken(server, app, alice.url)
  const rs = server.openPaymentsUrl
  const usd = (value: string) => ({ value, assetCode: 'USD', assetScale: 2 })

  let requests = 0
  let errors = 0
  const expect = (status: number, wanted: number, what: string) => {
    requests++
    if (status !== wanted) {
      errors++
      if (errors <= 5) console.error(`${what}: ${status}`)
    }
  }
  /** One whole flow: every kind of request the server serves in a payment, signed as clients sign. */
  const flow = async () => {
    expect((await request(bob.url)).status, 200, 'wallet address')
    const grant = await signedRequest(`${server.authUrl}/`, {
      body: {
        client: app.walletAddressUrl,
        access_token: { access: [{ type: 'quote', actions: ['create'] }] },
      },
      identity: app,
    })
    expect(grant.status, 200, 'grant')
    const ip = await signedRequest(`${rs}/incoming-payments`, {
      body: { walletAddress: bob.url, incomingAmount: usd('100') },
      token: ipToken,
      identity: app,
    })
    expect(ip.status, 201, 'incoming payment')
    expect(
      (await signedRequest(ip.body.id, { method: 'GET', token: ipToken, identity: app })).status,
      200,
      'read incoming payment',
    )
    const list = await signedRequest(
      `${rs}/incoming-payments?${new URLSearchParams({ 'wallet-address': bob.url, first: '5' })}`,
      { method: 'GET', token: ipToken, identity: app },
    )
    expect(list.status, 200, 'list')
    const quote = await signedRequest(`${rs}/quotes`, {
      body: {
        walletAddress: alice.url,
        receiver: ip.body.id,
        method: 'ilp',
        debitAmount: usd('60'),
      },
      token: quoteToken,
      identity: app,
    })
    expect(quote.status, 201, 'quote')
    const payment = await signedRequest(`${rs}/outgoing-payments`, {
      body: { walletAddress: alice.url, quoteId: quote.body.id },
      token: opToken,
      identity: app,
    })
    expect(payment.status, 201, 'outgoing payment')
    const method = ip.body.methods[0]
    const packet = await postIlp(
      `http://127.0.0.1:${ports.ilp}/ilp`,
      streamPrepare({ ...method, amount: 1n }),
      { token: peer.token },
    )
    expect(packet.status, 200, 'ILP packet')
  }

  // Warm-up: the first flows compile schemas and fill pools and caches.
  const warmUntil = performance.now() + 15_000
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < warmUntil) await flow()
    }),
  )
  requests = 0
  errors = 0

  const samples: { t: number; rss: number; heap: number; gcs: number; requests: number }[] = []
  const started = performance.now()
  const sample = () =>
    samples.push({
      t: (performance.now() - started) / 1000,
      rss: rssMiB(),
      heap: heapAfterFullGc(),
      gcs: fullGcs(),
      requests,
    })
  sample()
  const timer = setInterval(sample, SAMPLE_SECONDS * 1000)
  const deadline = started + SECONDS * 1000
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) await flow()
    }),
  )
  clearInterval(timer)
  sample()

  const db = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${schema}` })
  await db.connect()
  const notCompleted = Number(
    (await db.query("SELECT count(*) FROM outgoing_payments WHERE state = 'failed'")).rows[0].count,
  )
  await db.end()

  console.log(
    `\nMachine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${SECONDS} s of load after 15 s of warm-up, ${CONCURRENCY} concurrent flows, server and load generator one process each.\n`,
  )
  console.log(
    '| time (s) | RSS (MiB) | heap after last full GC (MB) | full GCs so far | requests so far | requests/s since last row |',
  )
  console.log('|---:|---:|---:|---:|---:|---:|')
  samples.forEach((s, i) => {
    const prev = samples[i - 1]
    const rate = prev ? (s.requests - prev.requests) / (s.t - prev.t) : Number.NaN
    console.log(
      `| ${s.t.toFixed(0)} | ${s.rss.toFixed(1)} | ${s.heap.toFixed(1)} | ${s.gcs} | ${s.requests} | ${Number.isNaN(rate) ? '–' : rate.toFixed(0)} |`,
    )
  })
  // Growth over the second half, by least squares: what a leak shows as a steady slope.
  const half = samples.filter((s) => s.t >= SECONDS / 2)
  const slope = (y: (s: (typeof samples)[number]) => number) => {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const [mt, my] = [mean(half.map((s) => s.t)), mean(half.map(y))]
    const perSecond =
      half.reduce((a, s) => a + (s.t - mt) * (y(s) - my), 0) /
      half.reduce((a, s) => a + (s.t - mt) ** 2, 0)
    return (perSecond * 60).toFixed(2)
  }
  const range = (y: (s: (typeof samples)[number]) => number) =>
    `${Math.min(...samples.map(y)).toFixed(1)}–${Math.max(...samples.map(y)).toFixed(1)}`
  console.log(
    `\n${requests} requests (${(requests / SECONDS).toFixed(0)}/s), ${errors} unexpected statuses, ${notCompleted} payments failed. RSS ${range((s) => s.rss)} MiB, ${slope((s) => s.rss)} MiB per minute over the second half; heap after full GC ${range((s) => s.heap)} MB, ${slope((s) => s.heap)} MB per minute over the second half.`,
  )
  if (errors > 0) process.exitCode = 1
} finally {
  killAll()
  const c = new pg.Client({ connectionString: DATABASE_URL })
  await c.connect()
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await c.end()
}
