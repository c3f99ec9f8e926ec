import assert from 'node:assert/strict'
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http'
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Server as TcpServer,
} from 'node:net'
import { after, before, describe, test } from 'node:test'
import { parseNetwork } from './addresses.ts'
import { createOutbound, type OutboundPolicy, type Resolver } from './fetch.ts'

/** A TCP listener that counts connections: what "no connection was made" is checked against. */
async function tripwire(
  host: string,
): Promise<{ port: number; hits: () => number; close(): Promise<void> }> {
  let hits = 0
  const server: TcpServer = createTcpServer((socket) => {
    hits++
    socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

async function httpServer(
  host: string,
  handler: RequestListener,
): Promise<{ server: Server; port: number }> {
  const server = createHttpServer(handler)
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return { server, port: (server.address() as AddressInfo).port }
}

const deny: OutboundPolicy = { httpsOnly: false, allowPrivate: false, allowedNetworks: [] }
const bounds = { timeoutMs: 2000, maxBytes: 1024 }

describe('a policy that refuses private addresses', () => {
  let v4: Awaited<ReturnType<typeof tripwire>>
  let v6: Awaited<ReturnType<typeof tripwire>>
  before(async () => {
    v4 = await tripwire('127.0.0.1')
    v6 = await tripwire('::1')
  })
  after(async () => {
    await v4.close()
    await v6.close()
  })

  test('literal addresses are refused before any connection', async () => {
    const outbound = createOutbound(deny)
    for (const url of [
      `http://127.0.0.1:${v4.port}/alice`,
      `http://[::1]:${v6.port}/alice`,
      `http://[::ffff:127.0.0.1]:${v4.port}/alice`,
      `http://[::ffff:7f00:1]:${v4.port}/alice`,
      `http://2130706433:${v4.port}/alice`, // 127.0.0.1 as one number
      `http://0x7f.1:${v4.port}/alice`,
      `http://10.0.0.1:${v4.port}/`,
      `http://169.254.169.254/latest/meta-data/`,
      `http://100.64.0.1/`,
      `http://[fd00::1]/`,
      `http://[fe80::1]/`,
      `http://0.0.0.0:${v4.port}/`,
    ]) {
      const result = await outbound(url, bounds)
      assert.equal(result.kind, 'refused', url)
    }
    assert.equal(v4.hits(), 0)
    assert.equal(v6.hits(), 0)
  })

  test('a host name that resolves to loopback is refused, by the system resolver too', async () => {
    const outbound = createOutbound(deny)
    const result = await outbound(`http://localhost:${v4.port}/`, bounds)
    assert.equal(result.kind, 'refused')
    assert.match((result as { reason: string }).reason, /localhost resolves to .* \(loopback\)/)
    assert.equal(v4.hits(), 0)
  })

  test('the address checked is the address connected to: a rebinding resolver gains nothing', async () => {
    const allowed = await httpServer('127.0.0.2', (_req, res) => res.end('{"ok":true}'))
    // Allowed on its first answer, loopback on every later one, as a rebinding DNS server would.
    let answers = 0
    const rebinding: Resolver = async () =>
      answers++ === 0
        ? [{ address: '127.0.0.2', family: 4 }]
        : [{ address: '127.0.0.1', family: 4 }]
    const outbound = createOutbound(
      { ...deny, allowedNetworks: [parseNetwork('127.0.0.2')!] },
      { resolve: rebinding },
    )
    const first = await outbound(`http://rebind.test:${allowed.port}/`, bounds)
    assert.equal(first.kind, 'response')
    // A new connection (the first one is closed) resolves again, and that answer is checked.
    allowed.server.closeAllConnections()
    const second = await outbound(`http://rebind.test:${v4.port}/`, bounds)
    assert.equal(second.kind, 'refused')
    assert.equal(v4.hits(), 0)
    allowed.server.close()
  })

  test('a name with any refused address is refused, even beside an allowed one', async () => {
    const resolve: Resolver = async () => [
      { address: '127.0.0.2', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ]
    const outbound = createOutbound(
      { ...deny, allowedNetworks: [parseNetwork('127.0.0.2')!] },
      { resolve },
    )
    assert.equal((await outbound(`http://mixed.test:${v4.port}/`, bounds)).kind, 'refused')
    assert.equal(v4.hits(), 0)
  })

  test('https only: http, and anything else, is refused', async () => {
    const outbound = createOutbound({ ...deny, allowPrivate: true, httpsOnly: true })
    assert.equal((await outbound(`http://127.0.0.1:${v4.port}/`, bounds)).kind, 'refused')
    assert.equal((await outbound('ftp://example.com/x', bounds)).kind, 'refused')
    assert.equal((await outbound('file:///etc/passwd', bounds)).kind, 'refused')
    assert.equal((await outbound('not a url', bounds)).kind, 'refused')
    assert.equal(v4.hits(), 0)
  })
})

describe('bounds', () => {
  const outbound = createOutbound({ ...deny, allowPrivate: true })
  let target: Awaited<ReturnType<typeof tripwire>>
  let server: Server
  let origin: string
  before(async () => {
    target = await tripwire('127.0.0.1')
    const s = await httpServer('127.0.0.1', (req, res) => {
      if (req.url === '/redirect') {
        res.writeHead(302, { location: `http://127.0.0.1:${target.port}/` }).end()
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-length': '4096' }).end('x'.repeat(4096))
      } else if (req.url === '/chunked-big') {
        res.write('x'.repeat(800))
        res.end('x'.repeat(800))
      } else if (req.url === '/hang') {
        // Never answers.
      } else if (req.url === '/slow-body') {
        res.writeHead(200)
        res.write('{')
      } else {
        let body = ''
        req.on('data', (c) => {
          body += c
        })
        req.on('end', () =>
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(
              JSON.stringify({ method: req.method, body, auth: req.headers.authorization ?? null }),
            ),
        )
      }
    })
    server = s.server
    origin = `http://127.0.0.1:${s.port}`
  })
  after(async () => {
    server.closeAllConnections()
    server.close()
    await target.close()
  })

  test('a request is sent and its response read', async () => {
    const result = await outbound(`${origin}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer t' },
      body: '{"a":1}',
      ...bounds,
    })
    assert.equal(result.kind, 'response')
    if (result.kind !== 'response') return
    assert.equal(result.status, 200)
    assert.deepEqual(JSON.parse(result.body.toString()), {
      method: 'POST',
      body: '{"a":1}',
      auth: 'Bearer t',
    })
  })

  test('redirects are not followed', async () => {
    const result = await outbound(`${origin}/redirect`, bounds)
    assert.equal(result.kind === 'response' && result.status, 302)
    assert.equal(target.hits(), 0)
  })

  test('a body larger than maxBytes is a failure, declared or streamed', async () => {
    for (const path of ['/big', '/chunked-big']) {
      const result = await outbound(`${origin}${path}`, bounds)
      assert.deepEqual(result, { kind: 'failed', reason: 'response larger than 1024 bytes' }, path)
    }
  })

  test('no answer, or a body that stalls, within the time is a failure', async () => {
    for (const path of ['/hang', '/slow-body']) {
      const started = Date.now()
      const result = await outbound(`${origin}${path}`, { ...bounds, timeoutMs: 200 })
      assert.deepEqual(result, { kind: 'failed', reason: 'no answer within 200 ms' }, path)
      assert.ok(Date.now() - started < 1500)
    }
  })

  test('an unreachable server is a failure; credentials in a URL are refused', async () => {
    const closed = await tripwire('127.0.0.1')
    await closed.close()
    assert.deepEqual(await outbound(`http://127.0.0.1:${closed.port}/`, bounds), {
      kind: 'failed',
      reason: 'ECONNREFUSED',
    })
    assert.equal(
      (await outbound(`http://user:pw@127.0.0.1:${target.port}/`, bounds)).kind,
      'refused',
    )
    assert.equal(target.hits(), 0)
  })
})
