import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import {
  deserializeIlpPrepare,
  type IlpPrepare,
  type IlpReject,
  isFulfill,
  serializeIlpFulfill,
  serializeIlpPrepare,
  serializeIlpReject,
} from 'ilp-packet'
import { sql } from 'kysely'
import { sendPrepare } from '../src/ilp/http-client.ts'
import { checkBooks } from '../src/ledger/invariants.ts'
import { addPeer, sendPacket, type TestPeer } from './helpers/ilp.ts'
import { eventually, freePort, startTestServer, type TestServer } from './helpers/server.ts'

/**
 * Packets for addresses that are not ours go to the peer with the longest matching route, here a
 * scripted ILP-over-HTTP endpoint standing in for the next ASE.
 */
let server: TestServer
let upstream: TestPeer
let downstream: Server
let downstreamUrl: string
/** How the scripted peer answers the next packet. */
let answer: (prepare: IlpPrepare) => { status?: number; body?: Buffer; hang?: boolean }
let seen: { headers: IncomingHttpHeaders; prepare: IlpPrepare }[] = []

const OUTGOING_TOKEN = 'downstream-token-0123456789'
const fulfillment = randomBytes(32)
const condition = createHash('sha256').update(fulfillment).digest()

before(async () => {
  downstream = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const prepare = deserializeIlpPrepare(Buffer.concat(chunks))
      seen.push({ headers: req.headers, prepare })
      const a = answer(prepare)
      if (a.hang) return
      res.writeHead(a.status ?? 200, { 'content-type': 'application/octet-stream' })
      res.end(a.body)
    })
  })
  await new Promise<void>((resolve) => downstream.listen(0, '127.0.0.1', resolve))
  downstreamUrl = `http://127.0.0.1:${(downstream.address() as AddressInfo).port}/ilp`
  server = await startTestServer({
    ILP_ADDRESS: 'test.ase-b',
    RATES: JSON.stringify({ USD: { EUR: '0.9' } }),
  })
  upstream = await addPeer(server, { name: 'ase-a', creditLimit: 1_000_000n })
  await addPeer(server, {
    name: 'ase-c',
    routes: ['test.ase-c'],
    httpEndpoint: downstreamUrl,
    outgoingToken: OUTGOING_TOKEN,
  })
  await addPeer(server, {
    name: 'ase-eu',
    assetCode: 'EUR',
    assetScale: 2,
    httpEndpoint: downstreamUrl,
  })
  await addPeer(server, {
    name: 'ase-gone',
    httpEndpoint: `http://127.0.0.1:${await freePort()}/ilp`,
  })
})
after(async () => {
  downstream.closeAllConnections()
  await new Promise((resolve) => downstream.close(resolve))
  await server.close()
})

const packet = (destination: string, expiresInMs = 30_000) =>
  serializeIlpPrepare({
    amount: '1000',
    expiresAt: new Date(Date.now() + expiresInMs),
    executionCondition: condition,
    destination,
    data: Buffer.from('hello'),
  })
const forward = (destination: string, expiresInMs?: number) => {
  seen = []
  return sendPacket(server.ilpUrl, upstream, packet(destination, expiresInMs))
}
const fulfill = (f = fulfillment) => ({
  body: serializeIlpFulfill({ fulfillment: f, data: Buffer.from('ok') }),
})

describe('forwarding to a peer', () => {
  test('a Fulfill comes back; the peer got our token, the packet, an earlier expiry', async () => {
    answer = () => fulfill()
    const original = packet('test.ase-c.bob')
    seen = []
    const reply = await sendPacket(server.ilpUrl, upstream, original)
    assert.ok(isFulfill(reply))
    assert.deepEqual(reply.fulfillment, fulfillment)
    assert.equal(seen.length, 1)
    const [{ headers, prepare }] = seen as [(typeof seen)[0]]
    assert.equal(headers.authorization, `Bearer ${OUTGOING_TOKEN}`)
    assert.equal(headers['content-type'], 'application/octet-stream')
    assert.equal(prepare.amount, '1000')
    assert.equal(prepare.destination, 'test.ase-c.bob')
    assert.deepEqual(prepare.executionCondition, condition)
    assert.deepEqual(prepare.data, Buffer.from('hello'))
    const expiry = deserializeIlpPrepare(original).expiresAt.getTime()
    assert.equal(prepare.expiresAt.getTime(), expiry - 1000)
  })

  test('a forwarded Fulfill moves the money from the sending peer to the next; a Reject moves nothing', async () => {
    const position = async (name: string) => {
      const row = await server.database.db
        .selectFrom('peers as p')
        .innerJoin('ledger_accounts as l', 'l.id', 'p.ledger_account_id')
        .select(['l.credits_posted', 'l.debits_posted', 'l.debits_pending'])
        .where('p.name', '=', name)
        .executeTakeFirstOrThrow()
      return { net: row.credits_posted - row.debits_posted, pending: row.debits_pending }
    }
    const [a0, c0] = [await position('ase-a'), await position('ase-c')]
    answer = () => ({ body: serializeIlpFulfill({ fulfillment, data: Buffer.alloc(0) }) })
    assert.ok(isFulfill(await sendPacket(server.ilpUrl, upstream, packet('test.ase-c.bob'))))
    const [a1, c1] = [await position('ase-a'), await position('ase-c')]
    assert.equal(a0.net - a1.net, 1000n) // ase-a owes us what it sent
    assert.equal(c1.net - c0.net, 1000n) // we owe ase-c what it delivered
    answer = () => ({
      body: serializeIlpReject({
        code: 'F99',
        triggeredBy: 'test.ase-c',
        message: 'no',
        data: Buffer.alloc(0),
      }),
    })
    assert.ok(!isFulfill(await sendPacket(server.ilpUrl, upstream, packet('test.ase-c.bob'))))
    const [a2, c2] = [await position('ase-a'), await position('ase-c')]
    assert.deepEqual([a2, c2], [a1, c1])
    assert.equal(a2.pending, 0n)
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('a Fulfill whose booking fails goes back at once, and is booked when the database takes it', async () => {
    const db = server.database.db
    const since = new Date()
    const posted = () =>
      db
        .selectFrom('ledger_transfers')
        .select(['state'])
        .where('reference', '=', 'ilp:forward')
        .where('created_at', '>=', since)
        .execute()
    // The database refuses to post a forwarded packet's reservation twice, then takes it.
    await sql`CREATE SEQUENCE forward_post_failures`.execute(db)
    await sql`CREATE FUNCTION fail_forward_posts() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.reference = 'ilp:forward' AND NEW.state = 'posted'
           AND nextval('forward_post_failures') <= 2 THEN
          RAISE EXCEPTION 'the database refuses the post';
        END IF;
        RETURN NEW;
      END $$`.execute(db)
    await sql`CREATE TRIGGER fail_forward_posts BEFORE UPDATE ON ledger_transfers
      FOR EACH ROW EXECUTE FUNCTION fail_forward_posts()`.execute(db)
    try {
      answer = () => fulfill()
      const reply = await sendPacket(server.ilpUrl, upstream, packet('test.ase-c.bob'))
      assert.ok(isFulfill(reply), 'the next peer was paid: the Fulfill goes back')
      await eventually(async () => {
        const rows = await posted()
        return rows.length === 1 && rows[0]!.state === 'posted' ? true : undefined
      }, 10_000)
      const failures = await sql<{
        n: string
      }>`SELECT last_value AS n FROM forward_post_failures`.execute(db)
      assert.equal(failures.rows[0]!.n, 3n) // two refused, the third taken
      assert.ok((await checkBooks(db)).balanced)
    } finally {
      await sql`DROP TRIGGER fail_forward_posts ON ledger_transfers`.execute(db)
      await sql`DROP FUNCTION fail_forward_posts()`.execute(db)
      await sql`DROP SEQUENCE forward_post_failures`.execute(db)
    }
  })

  test('the amount is converted into the next peer’s asset, rounded down', async () => {
    answer = () => fulfill()
    assert.ok(isFulfill(await forward('test.ase-eu.carol')))
    assert.equal(seen[0]!.prepare.amount, '900')
  })

  test('a Reject from the peer is passed back as it is', async () => {
    const reject = {
      code: 'F99',
      triggeredBy: 'test.ase-c',
      message: 'no thanks',
      data: Buffer.from('why'),
    }
    answer = () => ({ body: serializeIlpReject(reject) })
    assert.deepEqual(await forward('test.ase-c.bob'), reject)
  })

  test('a Fulfill that does not match the condition is F05', async () => {
    answer = () => fulfill(randomBytes(32))
    const reply = (await forward('test.ase-c.bob')) as IlpReject
    assert.equal(reply.code, 'F05')
    assert.equal(reply.triggeredBy, 'test.ase-b')
  })

  test('no route is F02, too little time left R02, an unreachable peer T01', async () => {
    answer = () => fulfill()
    assert.equal(((await forward('test.nobody.bob')) as IlpReject).code, 'F02')
    assert.equal(((await forward('test.ase-c.bob', 900)) as IlpReject).code, 'R02')
    assert.equal(seen.length, 0)
    assert.equal(((await forward('test.ase-gone.bob')) as IlpReject).code, 'T01')
  })
})

describe('the ILP-over-HTTP client', () => {
  const peer = () => ({ httpEndpoint: downstreamUrl, outgoingToken: OUTGOING_TOKEN })
  const prepare = (expiresInMs = 30_000) =>
    deserializeIlpPrepare(packet('test.ase-c.x', expiresInMs))

  test('an HTTP error or a body that is no ILP reply is T00', async () => {
    answer = () => ({ status: 500, body: Buffer.from('oops') })
    assert.equal(((await sendPrepare(peer(), prepare(), 'test.me')) as IlpReject).code, 'T00')
    answer = () => ({ body: Buffer.from('not a packet') })
    const reply = (await sendPrepare(peer(), prepare(), 'test.me')) as IlpReject
    assert.equal(reply.code, 'T00')
    assert.equal(reply.triggeredBy, 'test.me')
  })

  test('an unreachable peer is T01', async () => {
    const gone = { httpEndpoint: `http://127.0.0.1:${await freePort()}/`, outgoingToken: 'x' }
    assert.equal(((await sendPrepare(gone, prepare(), 'test.me')) as IlpReject).code, 'T01')
  })

  test('no answer before the packet expires is R00, without waiting longer', async () => {
    answer = () => ({ hang: true })
    const started = Date.now()
    const reply = (await sendPrepare(peer(), prepare(300), 'test.me')) as IlpReject
    assert.equal(reply.code, 'R00')
    assert.ok(Date.now() - started < 1000)
    assert.equal(((await sendPrepare(peer(), prepare(-1), 'test.me')) as IlpReject).code, 'R00')
  })
})
