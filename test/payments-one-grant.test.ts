import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import pg from 'pg'
import { checkBooks } from '../src/ledger/invariants.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
} from './helpers/clients.ts'
import { DATABASE_URL } from './helpers/db.ts'
import { scrape } from './helpers/metrics.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * A busy grant does not take the database from everyone else: a grant's creates wait for each
 * other in the process, not on pooled connections. The grant's lock is held from outside (as a
 * long payment under it would), with three times the pool's connections' worth of payments under
 * it waiting; a payment under another grant still goes through at once. Waiting on the lock
 * instead, those would hold every pooled connection, and the other payment would get none
 * (a 503 when the pool's connection timeout ends).
 */
const POOL = 3
let server: TestServer
let app: ClientIdentity
let rs: string
let ipToken: string

const gbp = (value: string) => ({ value, assetCode: 'GBP', assetScale: 2 })

before(async () => {
  server = await startTestServer({}, { poolSize: POOL })
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  ipToken = await grantToken(server, app, [{ type: 'incoming-payment', actions: ['create'] }])
})
after(() => server.close())

async function payer(name: string) {
  const sender = await createWalletAddress(server, { path: `/${name}-sender`, assetCode: 'GBP' })
  const receiver = await createWalletAddress(server, {
    path: `/${name}-receiver`,
    assetCode: 'GBP',
  })
  await deposit(server, sender.id, 100_000n)
  const ip = await app.client.incomingPayment.create(
    { url: rs, accessToken: ipToken },
    { walletAddress: receiver.url },
  )
  const token = await outgoingPaymentToken(server, app, sender.url)
  const pay = () =>
    app.client.outgoingPayment.create(
      { url: rs, accessToken: token },
      { walletAddress: sender.url, incomingPayment: ip.id, debitAmount: gbp('100') },
    )
  return { sender, receiver, pay }
}

test("a grant's payments waiting for its lock leave the pool to the others", async () => {
  const busy = await payer('busy')
  const other = await payer('other')
  // The first payment makes the grant's lock row.
  const first = await busy.pay()
  const { grant_id: grantId } = await server.database.db
    .selectFrom('outgoing_payments')
    .select('grant_id')
    .where('id', '=', first.id.split('/').at(-1)!)
    .executeTakeFirstOrThrow()

  const holder = new pg.Client({
    connectionString: DATABASE_URL,
    options: `-c search_path=${server.database.schema}`,
  })
  await holder.connect()
  try {
    await holder.query('BEGIN')
    await holder.query('SELECT 1 FROM outgoing_payment_grants WHERE grant_id = $1 FOR UPDATE', [
      grantId,
    ])
    const waiting = Array.from({ length: 3 * POOL }, () => busy.pay())
    let done = 0
    for (const w of waiting) void w.then(() => done++)
    // One of them waits for the lock in PostgreSQL, the rest in the process (as the gauge says).
    const { rows } = await holder.query('SELECT pg_backend_pid() AS pid')
    await eventually(async () => {
      const blocked = await server.database.db
        .selectNoFrom(
          sql<number>`(SELECT count(*) FROM pg_stat_activity WHERE ${rows[0].pid} = ANY (pg_blocking_pids(pid)))`.as(
            'n',
          ),
        )
        .executeTakeFirstOrThrow()
      return Number(blocked.n) === 1 ? true : undefined
    })
    await eventually(async () =>
      (await scrape(server)).value('op_outgoing_payments_waiting_for_grant') === 3 * POOL - 1
        ? true
        : undefined,
    )

    // A 503 (thrown) when the pool's connections are all waiting for the busy grant's lock.
    const meanwhile = await other.pay()
    assert.deepEqual(meanwhile.sentAmount, gbp('100'))
    assert.equal(meanwhile.failed, false)
    assert.equal(await balanceOf(server, other.receiver.id), 100n)
    assert.equal(await balanceOf(server, busy.receiver.id), 100n, 'the busy grant still waits')

    assert.equal(done, 0, 'no payment under the busy grant went through the lock')
    await holder.query('COMMIT')
    const answers = await Promise.all(waiting)
    assert.ok(answers.every((a) => a.sentAmount.value === '100' && !a.failed))
    assert.equal((await scrape(server)).value('op_outgoing_payments_waiting_for_grant'), 0)
  } finally {
    await holder.end()
  }
  assert.equal(await balanceOf(server, busy.receiver.id), 100n * BigInt(1 + 3 * POOL))
  assert.equal(await balanceOf(server, busy.sender.id), 100_000n - 100n * BigInt(1 + 3 * POOL))
  assert.ok((await checkBooks(server.database.db)).balanced)
})
