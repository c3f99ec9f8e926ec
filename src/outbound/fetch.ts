import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import { type AddressPolicy, refusal } from './addresses.ts'

/** Who may be reached, and how. */
export interface OutboundPolicy extends AddressPolicy {
  /** Only `https:` URLs (production); otherwise `http:` too. */
  httpsOnly: boolean
}

/** URLs the operator configured (rates, webhooks): trusted to be where they are, still bounded. */
export const OPERATOR_POLICY: OutboundPolicy = {
  httpsOnly: false,
  allowPrivate: true,
  allowedNetworks: [],
}

export interface OutboundRequest {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
  /** For the whole exchange: connecting, sending, and reading the response. */
  timeoutMs: number
  /** The response body is read up to this size; a larger one is a failure. */
  maxBytes: number
}

export type OutboundResult =
  /** Any status: redirects are never followed, so a 3xx is returned as it is. */
  | { kind: 'response'; status: number; headers: IncomingHttpHeaders; body: Buffer }
  /** The policy refused the URL or every address its host resolves to: no connection was made. */
  | { kind: 'refused'; reason: string }
  /** Unreachable, timed out, interrupted or too large. */
  | { kind: 'failed'; reason: string }

/** Resolves a host name to its addresses (dns.lookup by default; tests may give their own). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>

/** Sends one HTTP request under a policy; never throws. */
export type Outbound = (url: string | URL, req: OutboundRequest) => Promise<OutboundResult>

class Refused extends Error {}

const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    ),
  )

/**
 * The one way the server makes HTTP requests to URLs it was given: by clients and peers (their
 * wallet addresses, key sets, incoming payments, authorization servers), under a policy that
 * refuses non-public addresses, or by the operator (rates, webhooks), under one that does not.
 *
 * The address check runs on the addresses a connection is actually made to: a literal IP is checked
 * before connecting, and a host name is resolved by this module's own `lookup`, handed to the
 * socket, which refuses the connection if any address it resolves to is refused. There is no second
 * resolution a DNS rebinding could change. Redirects are not followed. Time and size are bounded.
 */
export function createOutbound(
  policy: OutboundPolicy,
  opts: { logger?: Logger; resolve?: Resolver } = {},
): Outbound {
  const resolve = opts.resolve ?? systemResolver

  const lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (
      err: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void,
  ) => {
    resolve(hostname).then(
      (all) => {
        const addresses = options.family ? all.filter((a) => a.family === options.family) : all
        const refused = addresses
          .map((a) => ({ a, why: refusal(a.address, policy) }))
          .find((r) => r.why)
        if (refused) {
          return callback(
            new Refused(`${hostname} resolves to ${refused.a.address} (${refused.why})`),
            [],
          )
        }
        if (addresses.length === 0) return callback(new Error(`${hostname} has no address`), [])
        if (options.all) return callback(null, addresses)
        callback(null, addresses[0]!.address, addresses[0]!.family)
      },
      (err: NodeJS.ErrnoException) => callback(err, []),
    )
  }
  // Connections are reused per origin; each one was checked when it was made.
  const agents = {
    http: new HttpAgent({ keepAlive: true, timeout: 15_000, lookup }),
    https: new HttpsAgent({ keepAlive: true, timeout: 15_000, lookup }),
  }

  const refuse = (url: URL, reason: string): OutboundResult => {
    opts.logger?.info({ origin: url.origin, reason }, 'outbound request refused')
    return { kind: 'refused', reason }
  }

  return async (input, req) => {
    let url: URL
    try {
      url = new URL(input)
    } catch {
      return { kind: 'refused', reason: 'not a URL' }
    }
    const https = url.protocol === 'https:'
    if (!https && (policy.httpsOnly || url.protocol !== 'http:')) {
      return refuse(
        url,
        `${url.protocol} URLs are not fetched${policy.httpsOnly ? ' (https only)' : ''}`,
      )
    }
    if (url.username || url.password) return refuse(url, 'URLs with credentials are not fetched')
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    if (isIP(host)) {
      const why = refusal(host, policy)
      if (why) return refuse(url, `${host} is ${why}`)
    }
    const result = await send(url, https, req, https ? agents.https : agents.http)
    if (result.kind === 'refused') return refuse(url, result.reason)
    return result
  }
}

function send(
  url: URL,
  https: boolean,
  req: OutboundRequest,
  agent: HttpAgent,
): Promise<OutboundResult> {
  return new Promise((resolve) => {
    // The first outcome wins; later events (an error after a destroy) change nothing.
    let settled = false
    const done = (result: OutboundResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(result)
    }
    const body = req.body === undefined ? undefined : Buffer.from(req.body)
    const request = (https ? httpsRequest : httpRequest)(
      url,
      {
        method: req.method ?? 'GET',
        agent,
        headers: {
          ...req.headers,
          ...(body && { 'content-length': String(body.length) }),
        },
      },
      (res) => read(res, req.maxBytes).then(done),
    )
    request.on('error', (err: NodeJS.ErrnoException) =>
      done(
        err instanceof Refused
          ? { kind: 'refused', reason: err.message }
          : { kind: 'failed', reason: err.code ?? err.message },
      ),
    )
    const timer = setTimeout(() => {
      done({ kind: 'failed', reason: `no answer within ${req.timeoutMs} ms` })
      request.destroy()
    }, req.timeoutMs)
    request.end(body)
  })
}

function read(res: IncomingMessage, maxBytes: number): Promise<OutboundResult> {
  return new Promise((resolve) => {
    const tooLarge = () => {
      resolve({ kind: 'failed', reason: `response larger than ${maxBytes} bytes` })
      // Also closes the connection, which cannot be reused mid-body.
      res.destroy()
    }
    if (Number(res.headers['content-length'] ?? 0) > maxBytes) return tooLarge()
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) return tooLarge()
      chunks.push(chunk)
    })
    res.on('end', () =>
      resolve({
        kind: 'response',
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: Buffer.concat(chunks),
      }),
    )
    res.on('error', (err) =>
      resolve({ kind: 'failed', reason: `response interrupted: ${err.message}` }),
    )
    res.on('aborted', () => resolve({ kind: 'failed', reason: 'response interrupted' }))
  })
}
