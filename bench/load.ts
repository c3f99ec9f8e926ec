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

export function send(
  url: string,
  opts: { method: string; headers?: Record<string, string | number>; body?: string | Buffer },
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method, agent, headers: opts.headers }, (res) => {
      let firstByte: number | undefined
      res.on('data', (chunk: Buffer) => {
        firstByte ??= chunk[0]
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, firstByte }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}
