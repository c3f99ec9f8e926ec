import { createHash, type KeyObject } from 'node:crypto'
import { type Agent, request as httpRequest } from 'node:http'
import { createSignatureHeaders } from '@interledger/http-signature-utils'
import fc from 'fast-check'
import { serializeIlpPrepare } from 'ilp-packet'
import { type Credential, type Listener, pathParams, type Route } from './routes.ts'
import { amountString, fromSchema, nastyJson, nastyString, type Pool } from './values.ts'

/** What the generator knows about the server under test. */
export interface FuzzContext {
  pool: Pool
  origins: Record<Listener, string>
  /** Known-good values for a path parameter, by its name. */
  params: Record<string, string[]>
  gnapTokens: string[]
  /** The token that grants a route's access, by `METHOD template`, preferred over the others. */
  tokenFor: Record<string, string>
  continueTokens: string[]
  peerTokens: string[]
  adminKey: string
  console: { cookie: string; csrf: string }
  signer: { privateKey: KeyObject; keyId: string }
  ilpPackets: Buffer[]
  /** Valid bodies by `METHOD template`: mutated in one place, they reach the handler's own checks. */
  examples: Record<string, unknown[]>
}

/** One concrete request; `sign` asks for an RFC 9421 signature at send time (it is time-bound). */
export interface FuzzRequest {
  route: string
  listener: Listener
  method: string
  path: string
  headers: Record<string, string | string[]>
  body?: Buffer
  sign?: { token?: string }
}

const JSON_TYPE = 'application/json'
const FORM_TYPE = 'application/x-www-form-urlencoded'

/** Percent-encodes like a client would; unpaired surrogates (which encodeURIComponent refuses) as raw bytes. */
function encodeSegment(s: string): string {
  try {
    return encodeURIComponent(s)
  } catch {
    return [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
  }
}

/** Header values Node will put on the wire (it refuses control characters and non-Latin-1). */
const headerSafe = (s: string) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?')

function queryString(value: unknown): fc.Arbitrary<string> {
  const parts: string[] = []
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue
      // Repeated keys for arrays; values cut so that the URL stays within what a client sends.
      for (const one of Array.isArray(v) ? v.slice(0, 5) : [v]) {
        const text = typeof one === 'string' ? one : (JSON.stringify(one) ?? '')
        parts.push(`${encodeSegment(k)}=${encodeSegment(text.slice(0, 3000))}`)
      }
    }
  }
  const qs = parts.join('&')
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant(qs ? `?${qs}` : '') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('?a=%ZZ', '?first=1&first=2', '?=&&=', '?%00=%00', `?${qs}&${qs}`),
    },
  )
}

function pathFor(route: Route, ctx: FuzzContext): fc.Arbitrary<string> {
  const names = pathParams(route.template)
  const values = names.map((name) =>
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc.constantFrom(
          ...(ctx.params[`${route.template}:${name}`] ?? ctx.params[name] ?? ctx.pool.ids),
        ),
      },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 1, arbitrary: fc.constantFrom(...ctx.pool.ids) },
      { weight: 2, arbitrary: nastyString },
    ),
  )
  return fc.tuple(fc.tuple(...values), fc.nat(49)).map(([vals, variant]) => {
    let path = route.template
    names.forEach((name, i) => {
      path = path.replace(`{${name}}`, encodeSegment(vals[i]!))
    })
    if (variant === 0) return `/..${path}`
    if (variant === 1) return `${path}/../../admin`
    if (variant === 2) return `${path}/%2e%2e/%2e%2e/etc/passwd`
    if (variant === 3) return `${path}/${'a'.repeat(2000 + vals.length * 5000)}`
    if (variant === 4) return `/${path}`
    if (variant === 5) return `${path}/`
    return path
  })
}

/** Every place in a JSON document that can be replaced, as key paths. */
function leafPaths(value: unknown, path: string[] = []): string[][] {
  if (value === null || typeof value !== 'object') return [path]
  return [path, ...Object.entries(value).flatMap(([k, v]) => leafPaths(v, [...path, k]))]
}

/** A valid body with one value replaced (or removed): the bad field alone must be refused. */
function mutatedExample(examples: unknown[]): fc.Arbitrary<unknown> {
  const replacement = fc.oneof(nastyJson, nastyString, amountString, fc.constant(undefined))
  return fc
    .tuple(fc.constantFrom(...examples), fc.nat(), replacement)
    .map(([example, i, value]) => {
      const copy = structuredClone(example)
      const paths = leafPaths(copy)
      const path = paths[i % paths.length]!
      if (path.length === 0) return value
      let parent = copy as Record<string, unknown>
      for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>
      if (value === undefined) delete parent[path.at(-1)!]
      else parent[path.at(-1)!] = value
      return copy
    })
}

function jsonBody(
  schema: Record<string, any>,
  ctx: FuzzContext,
  examples: unknown[] = [],
): fc.Arbitrary<Buffer | undefined> {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? 'null')
  return fc.oneof(
    ...(examples.length > 0
      ? [
          { weight: 3, arbitrary: fc.constantFrom(...examples).map(json) },
          { weight: 10, arbitrary: mutatedExample(examples).map(json) },
        ]
      : []),
    {
      weight: 10,
      arbitrary: fromSchema(schema, ctx.pool).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
    },
    { weight: 1, arbitrary: nastyJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('{"a":'),
        Buffer.from('{"walletAddress":"x","walletAddress":"y","incomingAmount":{"value":"1"}}'),
        Buffer.from('['.repeat(100_000)),
        Buffer.from(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`),
        Buffer.from('{"metadata":{"note":"\\u0000"}}'),
        Buffer.from('{"a":"\\ud800"}'),
        Buffer.from('{"__proto__":{"polluted":true}}'),
        Buffer.from('{"constructor":{"prototype":{"polluted":true}}}'),
        Buffer.from(''),
        Buffer.from('null'),
        Buffer.from('1e999999'),
        Buffer.alloc(300 * 1024, 0x20),
      ),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  )
}

function formBody(ctx: FuzzContext): fc.Arbitrary<Buffer> {
  const field = fc.oneof(
    fc.constantFrom(ctx.console.csrf, ctx.adminKey, 'accept', 'reject'),
    nastyString,
  )
  return fc
    .record(
      {
        csrf: fc.oneof(fc.constant(ctx.console.csrf), nastyString),
        decision: fc.oneof(fc.constantFrom('accept', 'reject'), nastyString),
        key: fc.oneof(fc.constant(ctx.adminKey), nastyString),
        next: field,
        back: field,
        password: field,
        extra: field,
      },
      { requiredKeys: [] },
    )
    .map((r) => {
      const parts = Object.entries(r).map(([k, v]) => `${k}=${encodeSegment(v)}`)
      return Buffer.from(parts.join('&'))
    })
}

function ilpBody(ctx: FuzzContext): fc.Arbitrary<Buffer> {
  const prepare = fc
    .record({
      amount: amountString,
      destination: fc.oneof(fc.constantFrom('test.peer', 'private.x', 'g.nowhere'), nastyString),
      data: fc.uint8Array({ maxLength: 64 }),
      expiresIn: fc.integer({ min: -60_000, max: 60_000 }),
      condition: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    })
    .map((p) => {
      try {
        return serializeIlpPrepare({
          amount: p.amount,
          destination: p.destination,
          data: Buffer.from(p.data),
          expiresAt: new Date(Date.now() + p.expiresIn),
          executionCondition: Buffer.from(p.condition),
        })
      } catch {
        return Buffer.from(p.data)
      }
    })
  return fc.oneof(
    { weight: 4, arbitrary: prepare },
    { weight: 2, arbitrary: fc.constantFrom(...ctx.ilpPackets) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(70 * 1024, 12)) },
  )
}

function contentType(route: Route): fc.Arbitrary<string | undefined> {
  const natural =
    route.body === 'form'
      ? FORM_TYPE
      : route.body === 'ilp'
        ? 'application/octet-stream'
        : JSON_TYPE
  return fc.oneof(
    { weight: 10, arbitrary: fc.constant(natural) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        undefined,
        'text/plain',
        JSON_TYPE,
        FORM_TYPE,
        'multipart/form-data; boundary=x',
        'application/json; charset=utf-16',
        'application/merge-patch+json',
        'application/octet-stream',
        '*/*',
        'garbage',
      ),
    },
  )
}

const garbageHeaders: fc.Arbitrary<Record<string, string | string[]>> = fc.oneof(
  fc.constantFrom<Record<string, string | string[]>>(
    {
      signature: ['sig1=:AAAA:', 'sig1=:BBBB:'],
      'signature-input': ['sig1=();created=1', 'sig1=()'],
    },
    { signature: 'sig1=:not base64:', 'signature-input': 'sig1=("@method");keyid="k";created=1' },
    { 'signature-input': `sig1=(${'"@method" '.repeat(500)})` },
    { 'content-digest': 'sha-512=:AAAA:' },
    { authorization: ['GNAP a', 'GNAP b'] },
    { authorization: 'Bearer' },
    { authorization: `GNAP ${'x'.repeat(8000)}` },
    { cookie: `op_console=${'y'.repeat(4000)}; op_interaction=z` },
    { 'x-forwarded-for': '127.0.0.1, ::1' },
    { host: 'evil.example' },
    { 'content-encoding': 'gzip' },
    { 'transfer-encoding': 'chunked' },
    { 'idempotency-key': ['a', 'b'] },
    { 'x-long': 'a'.repeat(20_000) },
  ),
  nastyString.map((s) => ({ authorization: `GNAP ${headerSafe(s)}`, signature: headerSafe(s) })),
)

/** The credential a well-formed request carries, or a broken one. */
function credentialFor(
  credential: Credential,
  ctx: FuzzContext,
  preferred: string | undefined,
): fc.Arbitrary<{ headers: Record<string, string | string[]>; sign?: { token?: string } }> {
  const some = (
    arb: fc.Arbitrary<{ headers: Record<string, string | string[]>; sign?: { token?: string } }>,
  ) =>
    fc.oneof(
      { weight: 8, arbitrary: arb },
      { weight: 2, arbitrary: garbageHeaders.map((headers) => ({ headers })) },
      { weight: 1, arbitrary: fc.constant({ headers: {} }) },
    )
  switch (credential) {
    case 'gnap':
      return some(
        fc.oneof(
          {
            weight: 6,
            arbitrary: fc
              .constantFrom(...(preferred ? [preferred] : ctx.gnapTokens))
              .map((token) => ({ headers: {}, sign: { token } })),
          },
          { weight: 1, arbitrary: fc.constant({ headers: {}, sign: {} }) },
          {
            weight: 1,
            arbitrary: fc
              .constantFrom(...ctx.gnapTokens)
              .map((t) => ({ headers: { authorization: `GNAP ${t}` } })),
          },
        ),
      )
    case 'client':
      return some(fc.constant({ headers: {}, sign: {} }))
    case 'continue':
      return some(
        fc
          .constantFrom(...ctx.continueTokens, ...ctx.gnapTokens)
          .map((token) => ({ headers: {}, sign: { token } })),
      )
    case 'admin':
      return some(fc.constant({ headers: { authorization: `Bearer ${ctx.adminKey}` } }))
    case 'console':
      return some(
        fc.constant({
          headers: {
            cookie: ctx.console.cookie,
            'sec-fetch-site': 'same-origin',
            origin: ctx.origins.admin,
          },
        }),
      )
    case 'peer':
      return some(
        fc
          .constantFrom(...ctx.peerTokens)
          .map((t) => ({ headers: { authorization: `Bearer ${t}` } })),
      )
    case 'none':
      return fc.oneof(
        { weight: 6, arbitrary: fc.constant({ headers: {} }) },
        { weight: 1, arbitrary: garbageHeaders.map((headers) => ({ headers })) },
      )
  }
}

/** Requests to one route: mostly shaped like the contract, broken in every way at every level. */
export function requestsFor(route: Route, ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const body =
    route.body === undefined
      ? fc.oneof(
          { weight: 6, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: jsonBody({}, ctx) },
        )
      : route.body === 'form'
        ? formBody(ctx)
        : route.body === 'ilp'
          ? ilpBody(ctx)
          : jsonBody(route.body, ctx, ctx.examples[`${route.method} ${route.template}`])
  const query = fromSchema(route.query ?? { type: 'object', properties: {} }, ctx.pool).chain(
    queryString,
  )
  return fc
    .record({
      path: pathFor(route, ctx),
      query,
      body,
      type: contentType(route),
      credential: credentialFor(
        route.credential,
        ctx,
        ctx.tokenFor[`${route.method} ${route.template}`],
      ),
      extra: fc.oneof(
        { weight: 10, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: garbageHeaders },
      ),
    })
    .map(({ path, query, body, type, credential, extra }) => ({
      route: `${route.listener} ${route.method} ${route.template}`,
      listener: route.listener,
      method: route.method,
      path: path + query,
      headers: {
        accept: 'application/json',
        ...(type !== undefined &&
          (body !== undefined || route.method !== 'GET') && { 'content-type': type }),
        ...credential.headers,
        ...(extra ?? {}),
      },
      ...(body !== undefined && { body }),
      ...(credential.sign && { sign: credential.sign }),
    }))
}

export interface FuzzResponse {
  status: number
  body: string
}

/**
 * Sends one request exactly as built (raw path, duplicated headers, any bytes) over a keep-alive
 * agent, signing it as the official client does when asked. A connection the server closes on a
 * malformed request is reported as status 0.
 */
export async function send(
  req: FuzzRequest,
  ctx: FuzzContext,
  agent: Agent,
): Promise<FuzzResponse> {
  const origin = new URL(ctx.origins[req.listener])
  const headers: Record<string, string | string[]> = { ...req.headers }
  if (req.sign) {
    // As the official client signs (http-signature-utils), but over the exact bytes sent, which
    // need not be JSON: Content-Digest, Content-Length and Content-Type are covered with a body.
    const toSign: Record<string, string> = {}
    if (typeof headers['content-type'] === 'string')
      toSign['content-type'] = headers['content-type']
    if (req.sign.token) toSign.authorization = `GNAP ${req.sign.token}`
    if (req.body && req.body.length > 0) {
      toSign['content-digest'] =
        `sha-512=:${createHash('sha512').update(req.body).digest('base64')}:`
      toSign['content-length'] = String(req.body.length)
      toSign['content-type'] ??= 'application/json'
    }
    let url: string
    try {
      url = new URL(`${origin.origin}${req.path}`).href
    } catch {
      url = `${origin.origin}${req.path}`
    }
    const signed = await createSignatureHeaders({
      request: {
        method: req.method,
        url,
        headers: toSign,
        ...(req.body && req.body.length > 0 && { body: 'bytes' }),
      },
      privateKey: ctx.signer.privateKey,
      keyId: ctx.signer.keyId,
    })
    Object.assign(headers, toSign)
    for (const [k, v] of Object.entries(signed)) if (v !== undefined) headers[k.toLowerCase()] = v
  }
  // Node frames a GET or DELETE body only when told its length; unframed bytes would be read as the
  // next request on the connection.
  if (req.body && !('transfer-encoding' in headers))
    headers['content-length'] = String(req.body.length)
  return new Promise((resolve, reject) => {
    let r: ReturnType<typeof httpRequest>
    try {
      r = httpRequest(
        {
          agent,
          host: origin.hostname,
          port: origin.port,
          method: req.method,
          path: req.path,
          headers,
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          )
          res.on('error', () => resolve({ status: 0, body: '' }))
        },
      )
    } catch (err) {
      // Node refused to send it (an invalid path or header): nothing reached the server.
      return reject(err)
    }
    r.on('timeout', () => r.destroy(new Error('request timed out')))
    r.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ECONNRESET' || code === 'EPIPE') resolve({ status: 0, body: '' })
      else reject(err)
    })
    r.end(req.body)
  })
}

/** The request as a reader can replay it (bodies cut to a readable length). */
export function describe(req: FuzzRequest): string {
  const body = req.body
    ? req.body.length > 2000
      ? `${req.body.subarray(0, 2000).toString('utf8')}… (${req.body.length} bytes)`
      : req.body.toString('utf8')
    : ''
  const headers = Object.fromEntries(
    Object.entries(req.headers).map(([k, v]) => [
      k,
      typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…` : v,
    ]),
  )
  return `${req.method} ${req.path.length > 500 ? `${req.path.slice(0, 500)}…` : req.path} (${req.listener}${req.sign ? `, signed${req.sign.token ? ' with a token' : ''}` : ''})\n${JSON.stringify(headers)}\n${body}`
}
