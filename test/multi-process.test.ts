import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { usd } from './helpers/amounts.ts'
import { type Balancer, startBalancer } from './helpers/balancer.ts'
import { createClientIdentity, grantToken, outgoingPaymentToken } from './helpers/clients.ts'
import {
  asTestServer,
  booksBalanced,
  type ClusterNode,
  clusterEnv,
  nodePorts,
  startNode,
} from './helpers/cluster.ts'
import { DATABASE_URL, dropSchema } from './helpers/db.ts'
import { killAll } from './helpers/process.ts'
import { createWalletAddress, deposit, eventually, type TestServer } from './helpers/server.ts'

/**
 * Three real server processes on one PostgreSQL schema behind load balancers, one of them without
 * the workers role. Each flow's steps run on different processes; two processes' payment workers
 * compete for the payments. Every payment must settle exactly once.
 */
const schema = `mp_${randomBytes(6).toString('hex')}`
const db = new pg.Pool({
  connectionString: DATABASE_URL,
  options: `-c search_path=${schema}`,
  max: 2,
})
let nodes: ClusterNode[]
let op: Balancer
let auth: Balancer
let server: TestServer

before(async () => {
  const ports = [await nodePorts(), await nodePorts(), await nodePorts()]
  op = await startBalancer(ports.map((p) => `http://127.0.0.1:${p.op}`))
  auth = await startBalancer(ports.map((p) => `http://127.0.0.1:${p.auth}`))
  // Debug logging shows each settlement by the worker that did it.
  const shared = {
    ...clusterEnv({ schema, openPaymentsUrl: op.url, authUrl: auth.url }),
    LOG_LEVEL: 'debug',
  }
  nodes = await Promise.all([
    startNode('p1', shared, ports[0]!),
    startNode('p2', shared, ports[1]!),
    startNode('p3', shared, ports[2]!, { ROLES: 'open-payments,auth,admin,ilp' }),
  ])
  server = asTestServer(nodes[2]!)
})
after(async () => {
  killAll()
  await op?.close()
  await auth?.close()
  await db.end()
  await dropSchema(schema)
})

test('three processes, one database: every payment settles exactly once', async (t) => {
  const app = await createClientIdentity(server, { path: '/app' })
  const senders = await Promise.all(
    [0, 1, 2].map((i) => createWalletAddress(server, { path: `/sender-${i}` })),
  )
  const receivers = await Promise.all(
    [0, 1, 2].map((i) => createWalletAddress(server, { path: `/receiver-${i}` })),
  )
  for (const s of senders) await deposit(server, s.id, 1_000_000n)
  // Consent for each sender, its pages and API calls spread round robin over the processes.
  const opTokens = await Promise.all(senders.map((s) => outgoingPaymentToken(server, app, s.url)))
  const quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])

  const amounts = new Map<number, bigint>()
  const flow = async (i: number, on?: [number, number, number]) => {
    const [sender, receiver, amount] = [senders[i % 3]!, receivers[(i + 1) % 3]!, 100n + BigInt(i)]
    amounts.set(i, amount)
    const step = (backend: number | undefined) => {
      op.pin(backend)
      auth.pin(backend)
    }
    step(on?.[0])
    const ipToken = await grantToken(server, app, [
      { type: 'incoming-payment', actions: ['create'], identifier: receiver.url },
    ])
    step(on?.[1])
    const ip = await app.client.incomingPayment.create(
      { url: server.openPaymentsUrl, accessToken: ipToken },
      { walletAddress: receiver.url, incomingAmount: usd(amount), metadata: { flow: i } },
    )
    step(on?.[2])
    const quote = await app.client.quote.create(
      { url: server.openPaymentsUrl, accessToken: quoteToken },
      { walletAddress: sender.url, receiver: ip.id, method: 'ilp' },
    )
    step(on?.[0])
    const payment = await app.client.outgoingPayment.create(
      { url: server.openPaymentsUrl, accessToken: opTokens[i % 3]! },
      { walletAddress: sender.url, quoteId: quote.id },
    )
    return { i, payment: payment.id.split('/').at(-1)!, incoming: ip.id.split('/').at(-1)! }
  }

  // One at a time, each step pinned: grant on one process, incoming payment on the next, quote
  // on the third, outgoing payment back on the first; rotating with every flow.
  const flows: Awaited<ReturnType<typeof flow>>[] = []
  for (let i = 0; i < 15; i++) flows.push(await flow(i, [i % 3, (i + 1) % 3, (i + 2) % 3]))
  op.pin(undefined)
  auth.pin(undefined)
  // Then a burst of concurrent flows, round robin.
  flows.push(...(await Promise.all(Array.from({ length: 30 }, (_, k) => flow(15 + k)))))

  // Every process served each kind of step.
  for (const [backend] of nodes.entries()) {
    for (const path of ['/incoming-payments', '/quotes', '/outgoing-payments']) {
      assert.ok(
        op.served.some((s) => s.backend === backend && s.method === 'POST' && s.path === path),
        `${backend} ${path}`,
      )
    }
    assert.ok(
      auth.served.some((s) => s.backend === backend && s.method === 'POST' && s.path === '/'),
    )
    assert.ok(auth.served.some((s) => s.backend === backend && s.path.startsWith('/interact/')))
  }

  await eventually(async () => {
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM outgoing_payments WHERE state = 'sending'",
    )
    return rows[0].n === 0 ? true : undefined
  }, 30_000)

  for (const f of flows) {
    const amount = amounts.get(f.i)!
    const {
      rows: [p],
    } = await db.query(
      'SELECT state, debit_amount, sent_amount, attempts FROM outgoing_payments WHERE id = $1',
      [f.payment],
    )
    assert.equal(p.state, 'completed', `flow ${f.i}`)
    assert.equal(BigInt(p.debit_amount), amount)
    assert.equal(BigInt(p.sent_amount), amount)
    // Exactly the reservation (posted in full) and the delivery: nothing moved twice.
    const { rows: transfers } = await db.query(
      'SELECT id, state, amount, posted_amount FROM ledger_transfers WHERE id LIKE $1 ORDER BY id',
      [`outgoing:${f.payment}:%`],
    )
    assert.deepEqual(
      transfers.map((t) => [t.id, t.state, BigInt(t.amount), BigInt(t.posted_amount)]),
      [
        [`outgoing:${f.payment}:deliver`, 'posted', amount, amount],
        [`outgoing:${f.payment}:reserve`, 'posted', amount, amount],
      ],
    )
    const {
      rows: [ip],
    } = await db.query(
      'SELECT received_amount, completed_at FROM incoming_payments WHERE id = $1',
      [f.incoming],
    )
    assert.equal(BigInt(ip.received_amount), amount)
    assert.ok(ip.completed_at)
  }

  // Each payment was settled by exactly one worker, and both workers took part.
  const settledBy = new Map<string, string[]>()
  for (const node of nodes) {
    for (const line of node.process.output().split('\n')) {
      if (!line.includes('"outgoing payment settled"')) continue
      const { payment } = JSON.parse(line) as { payment: string }
      settledBy.set(payment, [...(settledBy.get(payment) ?? []), node.name])
    }
  }
  assert.equal(settledBy.size, flows.length)
  for (const f of flows) assert.equal(settledBy.get(f.payment)?.length, 1, f.payment)
  const count = (name: string) => [...settledBy.values()].filter((n) => n[0] === name).length
  assert.equal(count('p3'), 0)
  assert.ok(count('p1') > 0 && count('p2') > 0, `p1 ${count('p1')}, p2 ${count('p2')}`)
  t.diagnostic(`${flows.length} payments settled: ${count('p1')} by p1, ${count('p2')} by p2`)

  // Senders paid exactly what they sent; receivers got exactly that.
  const balance = async (path: string) => {
    const { rows } = await db.query(
      'SELECT l.credits_posted - l.debits_posted - l.debits_pending AS b FROM ledger_accounts l JOIN wallet_addresses w ON w.ledger_account_id = l.id WHERE w.path = $1',
      [path],
    )
    return BigInt(rows[0].b)
  }
  for (let k = 0; k < 3; k++) {
    const sent = flows.filter((f) => f.i % 3 === k).reduce((sum, f) => sum + amounts.get(f.i)!, 0n)
    const got = flows
      .filter((f) => (f.i + 1) % 3 === k)
      .reduce((sum, f) => sum + amounts.get(f.i)!, 0n)
    assert.equal(await balance(`/sender-${k}`), 1_000_000n - sent)
    assert.equal(await balance(`/receiver-${k}`), got)
  }
  assert.ok(await booksBalanced(schema))
})
