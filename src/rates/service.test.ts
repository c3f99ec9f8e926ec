import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { Outbound } from '../outbound/fetch.ts'
import { createRatesService, parseStaticTable } from './service.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const noFetch: Outbound = async () => {
  throw new Error('must not fetch')
}

describe('static rates', () => {
  const rates = createRatesService({
    kind: 'static',
    table: { USD: { EUR: '0.9', JPY: 150.25 }, GBP: { USD: '1.25' }, EUR: { CHF: 0.95 } },
  })

  test('the same asset is 1/1 with no lookup', async () => {
    assert.deepEqual(await rates.rate('XYZ', 'XYZ'), { num: 1n, den: 1n })
    const http = createRatesService(
      { kind: 'http', url: 'http://127.0.0.1:1/rates', timeoutMs: 200, cacheTtlMs: 1000 },
      noFetch,
    )
    assert.deepEqual(await http.rate('USD', 'USD'), { num: 1n, den: 1n })
  })

  test('direct entries, strings or numbers', async () => {
    assert.deepEqual(await rates.rate('USD', 'EUR'), { num: 9n, den: 10n })
    assert.deepEqual(await rates.rate('USD', 'JPY'), { num: 601n, den: 4n })
    assert.deepEqual(await rates.rate('EUR', 'CHF'), { num: 19n, den: 20n })
  })

  test('the reverse entry answers as its exact inverse', async () => {
    assert.deepEqual(await rates.rate('EUR', 'USD'), { num: 10n, den: 9n })
    assert.deepEqual(await rates.rate('USD', 'GBP'), { num: 4n, den: 5n })
  })

  test('a direct entry wins over the reverse one', async () => {
    const both = createRatesService({
      kind: 'static',
      table: { USD: { EUR: '0.9' }, EUR: { USD: '1.1' } },
    })
    assert.deepEqual(await both.rate('EUR', 'USD'), { num: 11n, den: 10n })
  })

  test('unknown pairs have no rate; pairs are not chained', async () => {
    assert.equal(await rates.rate('USD', 'CHF'), undefined)
    assert.equal(await rates.rate('XYZ', 'USD'), undefined)
  })

  test('a table with a bad rate is refused at creation', () => {
    assert.throws(
      () => createRatesService({ kind: 'static', table: { USD: { EUR: '-0.9' } } }),
      RangeError,
    )
  })
})

test('static tables from configuration are validated', () => {
  assert.deepEqual(parseStaticTable('{"USD":{"EUR":"0.9","JPY":150}}'), {
    USD: { EUR: '0.9', JPY: 150 },
  })
  assert.deepEqual(parseStaticTable('{}'), {})
  for (const bad of [
    '',
    'not json',
    'null',
    '[]',
    '"USD"',
    '{"USD":null}',
    '{"USD":[]}',
    '{"USD":"0.9"}',
    '{"USD":{"EUR":null}}',
    '{"USD":{"EUR":true}}',
    '{"USD":{"EUR":"0"}}',
    '{"USD":{"EUR":-1}}',
    '{"USD":{"EUR":"0.9 "}}',
    '{"USD":{"EUR":"abc"}}',
    '{"USD":{"EUR":{}}}',
  ]) {
    assert.equal(parseStaticTable(bad), undefined, bad)
  }
})

describe('HTTP rates', () => {
  let server: Server
  let origin: string
  const requests: string[] = []
  let handler: (req: IncomingMessage, res: ServerResponse) => void

  before(async () => {
    server = createServer((req, res) => {
      requests.push(req.url!)
      handler(req, res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  const json =
    (body: unknown, status = 200) =>
    (_req: IncomingMessage, res: ServerResponse) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))

  /** A fresh service and request log for each test. */
  const service = (options: { cacheTtlMs?: number; timeoutMs?: number; path?: string } = {}) => {
    requests.length = 0
    return createRatesService({
      kind: 'http',
      url: `${origin}${options.path ?? '/rates'}`,
      timeoutMs: options.timeoutMs ?? 2000,
      cacheTtlMs: options.cacheTtlMs ?? 60_000,
    })
  }

  test('reads number and string rates exactly, keeping the query already in the URL', async () => {
    handler = json({ base: 'USD', rates: { EUR: 0.9, JPY: '150.25', BTC: '1.5e-5' } })
    const rates = service({ path: '/rates?key=abc' })
    assert.deepEqual(await rates.rate('USD', 'EUR'), { num: 9n, den: 10n })
    assert.deepEqual(await rates.rate('USD', 'JPY'), { num: 601n, den: 4n })
    assert.deepEqual(await rates.rate('USD', 'BTC'), { num: 3n, den: 200000n })
    assert.equal(await rates.rate('USD', 'GBP'), undefined)
    assert.deepEqual(requests, ['/rates?key=abc&base=USD'])
  })

  test('concurrent calls for one base share one request, and the table is cached', async () => {
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    handler = (req, res) => {
      const base = new URL(req.url!, origin).searchParams.get('base')
      void held.then(() => json({ base, rates: { EUR: '0.9', USD: '1.1' } })(req, res))
    }
    const rates = service({ cacheTtlMs: 300 })
    const pending = Array.from({ length: 10 }, () => rates.rate('USD', 'EUR'))
    await sleep(50)
    release()
    for (const r of await Promise.all(pending)) assert.deepEqual(r, { num: 9n, den: 10n })
    assert.equal(requests.length, 1)

    assert.deepEqual(await rates.rate('USD', 'EUR'), { num: 9n, den: 10n })
    assert.equal(await rates.rate('USD', 'CHF'), undefined)
    assert.equal(requests.length, 1)
    // Another base is another table.
    assert.deepEqual(await rates.rate('GBP', 'USD'), { num: 11n, den: 10n })
    assert.equal(requests.length, 2)
    // Once the table expires it is fetched again.
    await sleep(350)
    assert.deepEqual(await rates.rate('USD', 'EUR'), { num: 9n, den: 10n })
    assert.deepEqual(requests, ['/rates?base=USD', '/rates?base=GBP', '/rates?base=USD'])
  })

  test('only the base’s own table is read', async () => {
    handler = (req, res) =>
      new URL(req.url!, origin).searchParams.get('base') === 'EUR'
        ? json({ base: 'EUR', rates: { USD: '1.1' } })(req, res)
        : json({ base: 'USD', rates: {} })(req, res)
    const rates = service()
    assert.deepEqual(await rates.rate('EUR', 'USD'), { num: 11n, den: 10n })
    assert.equal(await rates.rate('USD', 'EUR'), undefined)
  })

  test('a server that never answers times out', async () => {
    handler = () => {}
    const rates = service({ timeoutMs: 200 })
    const started = Date.now()
    assert.equal(await rates.rate('USD', 'EUR'), undefined)
    const elapsed = Date.now() - started
    assert.ok(elapsed >= 150 && elapsed < 2000, `${elapsed} ms`)
    server.closeAllConnections()
  })

  test('bodies outside the contract give no rate', async () => {
    const bad: [string, (req: IncomingMessage, res: ServerResponse) => void][] = [
      ['500', json({ base: 'USD', rates: { EUR: 0.9 } }, 500)],
      ['404', json({ base: 'USD', rates: { EUR: 0.9 } }, 404)],
      ['not JSON', (_req, res) => res.writeHead(200).end('{"base":')],
      ['empty', (_req, res) => res.writeHead(200).end()],
      ['array', json([])],
      ['base mismatch', json({ base: 'EUR', rates: { EUR: 0.9 } })],
      ['base missing', json({ rates: { EUR: 0.9 } })],
      ['rates missing', json({ base: 'USD' })],
      ['rates not an object', json({ base: 'USD', rates: [0.9] })],
      ['a bad rate among good ones', json({ base: 'USD', rates: { EUR: 0.9, JPY: 'abc' } })],
      ['a zero rate', json({ base: 'USD', rates: { EUR: 0 } })],
      ['a negative rate', json({ base: 'USD', rates: { EUR: '-0.9' } })],
      ['a null rate', json({ base: 'USD', rates: { EUR: null } })],
      ['too large', json({ base: 'USD', rates: { EUR: 0.9 }, pad: 'x'.repeat(2 * 1024 * 1024) })],
    ]
    for (const [name, h] of bad) {
      handler = h
      assert.equal(await service().rate('USD', 'EUR'), undefined, name)
    }
  })

  test('an unreachable server gives no rate', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const rates = createRatesService({
      kind: 'http',
      url: `http://127.0.0.1:${port}/rates`,
      timeoutMs: 2000,
      cacheTtlMs: 60_000,
    })
    assert.equal(await rates.rate('USD', 'EUR'), undefined)
  })

  test('a failure is remembered for at most a second', async () => {
    handler = json({}, 503)
    const rates = service()
    assert.equal(await rates.rate('USD', 'EUR'), undefined)
    handler = json({ base: 'USD', rates: { EUR: '0.9' } })
    // A burst right after the failure does not hammer the feed.
    assert.equal(await rates.rate('USD', 'EUR'), undefined)
    assert.equal(requests.length, 1)
    await sleep(1100)
    assert.deepEqual(await rates.rate('USD', 'EUR'), { num: 9n, den: 10n })
    assert.equal(requests.length, 2)
  })
})
