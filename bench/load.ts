import { Agent, request } from 'node:http'

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
 * `fetch`'s shape over the same sender, for the requests whose answers are read (the full local
 * flow's, consent pages included): redirects are never followed (as `redirect: 'manual'`).
 */
export async function fetchOverHttp(url: string, init: RequestInit = {}): Promise<Response> {
  const body = init.body as string | undefined
  const {
    status,
    headers,
    body: answerBody,
  } = await exchange(url, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.headers as Record<string, string> | undefined),
      ...(body !== undefined && { 'content-length': Buffer.byteLength(body) }),
    },
    body,
  })
  const answer = new Headers()
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value ?? '']) answer.append(name, v)
  }
  const empty = status === 204 || status === 304
  return new Response(empty ? null : answerBody, { status, headers: answer })
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
