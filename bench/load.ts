import { Agent, request } from 'node:http'
import type { Answer as ConsentAnswer, Init } from '../demo/consent.ts'

/** A closed-loop load generator: `concurrency` callers, each sending its next request when the last one answers. */
export interface LoadResult {
  requests: number
  errors: number
  seconds: number
  perSecond: number
  p50: number
  p99: number
}

export async function runLoad(opts: {
  concurrency: number
  seconds: number
  /**
   * Builds the next request (signing it is the client's cost, not timed) and returns its sender;
   * `caller` (0 … concurrency-1) lets each caller keep to its own sender or grant.
   */
  prepare: (caller: number) => Promise<() => Promise<boolean>>
}): Promise<LoadResult> {
  const latencies: number[] = []
  let errors = 0
  const started = performance.now()
  const deadline = started + opts.seconds * 1000
  await Promise.all(
    Array.from({ length: opts.concurrency }, async (_, caller) => {
      while (performance.now() < deadline) {
        const send = await opts.prepare(caller)
        const t = performance.now()
        const ok = await send().catch(() => false)
        if (ok) latencies.push(performance.now() - t)
        else errors++
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN
  return {
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50: at(0.5),
    p99: at(0.99),
  }
}

/** What `send` answers: the status and the body's first byte (enough to tell an ILP Fulfill). */
export interface Sent {
  status: number
  firstByte: number | undefined
}

// Every measured row, the baseline's too, goes through this one sender: node:http with kept-alive
// connections. fetch (undici) cost the load generator about 0.9 ms of CPU per request, more than
// the server spent on some rows, on the two cores the servers share; one sender for all keeps the
// ratios fair.
const agent = new Agent({ keepAlive: true, maxSockets: 256 })

export async function send(
  url: string,
  opts: { method: string; headers?: Record<string, string | number>; body?: string | Buffer },
): Promise<Sent> {
  const { status, body } = await exchange(url, opts)
  return { status, firstByte: body[0] }
}

/**
 * What the full local flow reads of an answer (consent pages included): the part of `fetch`'s
 * Response it uses, which `fetch` itself also gives.
 */
export interface Answer extends ConsentAnswer {
  ok: boolean
  json(): Promise<unknown>
}

/**
 * The flow's requests over the same sender, answered as an `Answer`; redirects are never followed
 * (as fetch's `redirect: 'manual'`). Not a WHATWG Response: building one (its Headers, its body
 * stream) cost the load generator about 0.4 ms of CPU per request, about as much as the server
 * spends on a signed GET, and the flow is timed one request after another.
 */
export async function fetchOverHttp(
  url: string,
  // `redirect` is accepted as fetch's `'manual'`, which this sender always is.
  init: Init & { redirect?: 'manual' } = {},
): Promise<Answer> {
  const { body } = init
  const answer = await exchange(url, {
    method: init.method ?? 'GET',
    headers: {
      ...init.headers,
      ...(body !== undefined && { 'content-length': Buffer.byteLength(body) }),
    },
    body,
  })
  const { status, headers } = answer
  const text = async () => answer.body.toString('utf8')
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: {
      // As fetch's Headers.get: several values joined by ", ".
      get: (name) => {
        const value = headers[name.toLowerCase()]
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
      },
    },
    text,
    json: async () => JSON.parse(await text()),
  }
}

function exchange(
  url: string,
  opts: { method: string; headers?: Record<string, string | number>; body?: string | Buffer },
): Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method, agent, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
        }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}
