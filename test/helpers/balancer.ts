import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Balancer {
  url: string
  /** Sends every request to one backend (its index) until unpinned; round robin otherwise. */
  pin(backend: number | undefined): void
  /** Which backend (its index) served each request, in order. */
  served: { backend: number; method: string; path: string }[]
  close(): Promise<void>
}

/**
 * An HTTP load balancer in front of several server processes that share one public URL, as a
 * production deployment has: round robin, or pinned to one backend so that a test chooses which
 * process serves each step of a flow. Requests and responses pass through unchanged.
 */
export async function startBalancer(backends: string[]): Promise<Balancer> {
  let next = 0
  let pinned: number | undefined
  const served: Balancer['served'] = []
  const server: Server = createServer((req, res) => {
    const backend = pinned ?? next++ % backends.length
    served.push({ backend, method: req.method!, path: req.url!.split('?')[0]! })
    const upstream = httpRequest(
      new URL(req.url!, backends[backend]),
      { method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode!, up.headers)
        up.pipe(res)
      },
    )
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502)
      res.end()
    })
    req.pipe(upstream)
  })
  // Longer than any test: a client reusing a kept-alive connection just as the balancer closes it
  // idle (5 s by default, easily reached on a loaded machine) sees "fetch failed".
  server.keepAliveTimeout = 120_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pin: (backend) => {
      pinned = backend
    },
    served,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
