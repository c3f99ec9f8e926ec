import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, test } from 'node:test'
import pg from 'pg'
import { usd } from './helpers/amounts.ts'
import { createClientIdentity, grantToken, outgoingPaymentToken } from './helpers/clients.ts'
import { asTestServer, booksBalanced, clusterEnv, nodePorts, startNode } from './helpers/cluster.ts'
import { DATABASE_URL, dropSchema } from './helpers/db.ts'
import { killAll } from './helpers/process.ts'
import { createWalletAddress, deposit, eventually } from './helpers/server.ts'

/**
 * Crash safety of the payment worker: 50 local outgoing payments are created on a process without
 * workers; a second process's worker starts settling them and is killed with SIGKILL part way
 * through, then started again. Every payment must end completed or failed with its reservation
 * resolved, every receiver credited once, and the books balanced.
 */
const schema = `kill_${randomBytes(6).toString('hex')}`
const db = new pg.Pool({
  connectionString: DATABASE_URL,
  options: `-c search_path=${schema}`,
  max: 2,
})
after(async () => {
  killAll()
  await db.end()
  await dropSchema(schema)
})

const count = async (sql: string, params: unknown[] = []) =>
  Number((await db.query(sql, params)).rows[0].n)

test('SIGKILL while 50 payments are in flight, restart: each ends once, nothing stays reserved', async (t) => {
  const [creatorPorts, workerPorts] = [await nodePorts(), await nodePorts()]
  const shared = clusterEnv({
    schema,
    openPaymentsUrl: `http://127.0.0.1:${creatorPorts.op}`,
    authUrl: `http://127.0.0.1:${creatorPorts.auth}`,
  })
  const creator = await startNode('creator', shared, creatorPorts, {
    ROLES: 'open-payments,auth,admin,ilp',
  })
  const server = asTestServer(creator)
  const app = await createClientIdentity(server, { path: '/app' })
  const sender = await createWalletAddress(server, { path: '/sender' })
  const receiver = await createWalletAddress(server, { path: '/receiver' })
  await deposit(server, sender.id, 1_000_000n)
  const ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create'], identifier: receiver.url },
  ])
  const quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  const opToken = await outgoingPaymentToken(server, app, sender.url)

  const flow = async (i: number) => {
    const amount = 100n + BigInt(i)
    const ip = await app.client.incomingPayment.create(
      { url: server.openPaymentsUrl, accessToken: ipToken },
      { walletAddress: receiver.url, incomingAmount: usd(amount) },
    )
    const quote = await app.client.quote.create(
      { url: server.openPaymentsUrl, accessToken: quoteToken },
      { walletAddress: sender.url, receiver: ip.id, method: 'ilp' },
    )
    const payment = await app.client.outgoingPayment.create(
      { url: server.openPaymentsUrl, accessToken: opToken },
      { walletAddress: sender.url, quoteId: quote.id },
    )
    return { payment: payment.id.split('/').at(-1)!, incoming: ip.id.split('/').at(-1)!, amount }
  }
  const flows: Awaited<ReturnType<typeof flow>>[] = []
  for (let batch = 0; batch < 5; batch++) {
    flows.push(...(await Promise.all(Array.from({ length: 10 }, (_, k) => flow(batch * 10 + k)))))
  }
  // In flight: created, funds reserved, nobody settling them yet.
  assert.equal(
    await count("SELECT count(*) AS n FROM outgoing_payments WHERE state = 'sending'"),
    50,
  )
  const pendingReservations = () =>
    count(
      "SELECT count(*) AS n FROM ledger_transfers WHERE id LIKE 'outgoing:%:reserve' AND state = 'pending'",
    )
  assert.equal(await pendingReservations(), 50)

  // A worker process starts on them and is killed part way.
  let worker = await startNode('worker', shared, workerPorts)
  const settled = () =>
    count("SELECT count(*) AS n FROM outgoing_payments WHERE state <> 'sending'")
  await eventually(async () => ((await settled()) > 0 ? true : undefined), 20_000)
  worker.process.child.kill('SIGKILL')
  await worker.process.exited
  const atKill = await settled()
  t.diagnostic(`${atKill} of 50 settled when the worker was killed`)
  assert.ok(atKill < 50, 'the worker was killed before it had settled everything')

  worker = await startNode('worker', shared, workerPorts)
  await eventually(async () => ((await settled()) === 50 ? true : undefined), 30_000)

  for (const f of flows) {
    const {
      rows: [p],
    } = await db.query('SELECT state, sent_amount FROM outgoing_payments WHERE id = $1', [
      f.payment,
    ])
    assert.ok(['completed', 'failed'].includes(p.state))
    const { rows: reserve } = await db.query(
      'SELECT state, posted_amount FROM ledger_transfers WHERE id = $1',
      [`outgoing:${f.payment}:reserve`],
    )
    const {
      rows: [ip],
    } = await db.query('SELECT received_amount FROM incoming_payments WHERE id = $1', [f.incoming])
    if (p.state === 'completed') {
      // Posted in full once, delivered once, credited once.
      assert.equal(reserve[0].state, 'posted')
      assert.equal(BigInt(reserve[0].posted_amount), f.amount)
      assert.equal(BigInt(p.sent_amount), f.amount)
      assert.equal(BigInt(ip.received_amount), f.amount)
    } else {
      assert.equal(reserve[0].state, 'voided')
      assert.equal(BigInt(ip.received_amount), 0n)
    }
  }
  assert.equal(await pendingReservations(), 0)
  const paid = await db.query(
    "SELECT coalesce(sum(sent_amount), 0) AS paid FROM outgoing_payments WHERE state = 'completed'",
  )
  const {
    rows: [wallet],
  } = await db.query(
    "SELECT l.credits_posted - l.debits_posted AS balance, l.debits_pending FROM ledger_accounts l JOIN wallet_addresses w ON w.ledger_account_id = l.id WHERE w.path = '/sender'",
  )
  assert.equal(BigInt(wallet.debits_pending), 0n)
  assert.equal(1_000_000n - BigInt(wallet.balance), BigInt(paid.rows[0].paid))
  assert.ok(await booksBalanced(schema))
  t.diagnostic(
    `${await count("SELECT count(*) AS n FROM outgoing_payments WHERE state = 'completed'")} completed, ${await count("SELECT count(*) AS n FROM outgoing_payments WHERE state = 'failed'")} failed`,
  )
})
