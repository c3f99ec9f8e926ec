import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { deserializeIlpReply, IlpError, isFulfill, serializeIlpReject } from 'ilp-packet'
import type { TestServer } from './server.ts'

/**
 * A real HTTP hop between an ASE and its peer's ILP endpoint: it forwards packets unchanged and
 * tallies every reply (fulfilled, or rejected by code), so tests know exactly what crossed. It can
 * instead reject every packet itself (F02), or hold packets until released.
 */
export interface IlpProxy {
  url: string
  mode: 'forward' | 'reject' | 'hold'
  /** Replies that crossed the proxy, forwarded or its own. */
  tally: { fulfilled: number; rejected: Record<string, number> }
  /** Packets waiting in `hold` mode. */
  held(): number
  /** Forwards every held packet and switches back to `forward`. */
  release(): void
  /** Told of every packet that crossed, with its reply, once the reply is on its way back. */
  onPacket?: (prepare: Buffer, reply: Buffer) => void
  /**
   * Asked first about every packet: an answer of its own (an HTTP status, and a body for a 200)
   * is sent instead of forwarding it, and counted in no tally.
   */
  intercept?: (prepare: Buffer) => { status: number; body?: Buffer } | undefined
  close(): Promise<void>
}

export async function startIlpProxy(target: string): Promise<IlpProxy> {
  const waiting: (() => void)[] = []
  const proxy: IlpProxy = {
    url: '',
    mode: 'forward',
    tally: { fulfilled: 0, rejected: {} },
    held: () => waiting.length,
    release: () => {
      proxy.mode = 'forward'
      for (const go of waiting.splice(0)) go()
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
  const count = (reply: Buffer) => {
    const parsed = deserializeIlpReply(reply)
    if (isFulfill(parsed)) proxy.tally.fulfilled++
    else proxy.tally.rejected[parsed.code] = (proxy.tally.rejected[parsed.code] ?? 0) + 1
  }
  const server: Server = createServer(async (req, res) => {
    const body = await read(req)
    const own = proxy.intercept?.(body)
    if (own) {
      res.writeHead(own.status, { 'content-type': 'application/octet-stream' }).end(own.body)
      return
    }
    if (proxy.mode === 'hold') await new Promise<void>((resolve) => waiting.push(resolve))
    let reply: Buffer
    if (proxy.mode === 'reject') {
      reply = serializeIlpReject({
        code: IlpError.F02_UNREACHABLE,
        triggeredBy: 'test.proxy',
        message: 'proxy refuses',
        data: Buffer.alloc(0),
      })
    } else {
      const forwarded = await fetch(target, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          authorization: req.headers.authorization ?? '',
        },
        body,
      })
      assert.equal(forwarded.status, 200, 'the peer answers ILP-over-HTTP')
      reply = Buffer.from(await forwarded.arrayBuffer())
    }
    count(reply)
    proxy.onPacket?.(body, reply)
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(reply)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address && typeof address === 'object')
  proxy.url = `http://127.0.0.1:${address.port}/ilp`
  return proxy
}

async function read(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/**
 * Makes `to` a peer of `from` (USD, as `peer` in two-ases.ts does), with `from`'s packets going
 * through a proxy: returns the proxy.
 */
export async function peerThroughProxy(
  from: { admin: TestServer['admin'] },
  to: TestServer,
  name: string,
  tokens: { out: string; in: string },
): Promise<IlpProxy> {
  const proxy = await startIlpProxy(to.ilpUrl)
  const asset = await from.admin('POST', '/assets', { code: 'USD', scale: 2 })
  assert.ok(asset.status === 201 || asset.status === 409, `asset: ${asset.status}`)
  const res = await from.admin('POST', '/peers', {
    name,
    assetCode: 'USD',
    assetScale: 2,
    ilpAddress: to.config.openPayments.ilpAddress,
    httpEndpoint: proxy.url,
    outgoingToken: tokens.out,
    incomingTokens: [tokens.in],
    creditLimit: '100000000',
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return proxy
}
