import sodium from 'sodium-native'
import type { Jwk } from '../wallet-addresses/keys.ts'
import { checkContentDigest } from './content-digest.ts'
import {
  type InnerList,
  isInnerList,
  type Member,
  type Parameters,
  parseDictionary,
} from './structured-fields.ts'

export interface SignedRequest {
  method: string
  /** The absolute URL the client signed: see targetUri(). */
  targetUri: string
  /** Node's IncomingHttpHeaders: lower-case names. */
  headers: Record<string, string | string[] | undefined>
  /** The exact body bytes received; undefined or empty when there is no body. */
  rawBody: Buffer | undefined
}

/** Whether the request's headers say it carries a body (a non-zero length, or chunks). */
const declaresBody = (headers: SignedRequest['headers']) => {
  const length = headers['content-length']
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined
}

export type KeyLookup = (keyId: string) => Promise<Jwk | 'unknown_key' | 'keys_unavailable'>

export type SignatureFailureReason =
  | 'missing_headers'
  | 'malformed'
  | 'missing_component'
  | 'stale'
  | 'digest_mismatch'
  | 'unknown_key'
  | 'keys_unavailable'
  | 'invalid_signature'

export interface SignatureFailure {
  ok: false
  reason: SignatureFailureReason
  message: string
}

export interface SignatureSuccess {
  ok: true
  keyId: string
}

export interface VerifyOptions {
  now?: Date
  /** How old `created` may be. */
  maxAgeSeconds?: number
  /** How far `created` may be ahead of our clock. */
  maxFutureSkewSeconds?: number
}

const DEFAULT_MAX_AGE_SECONDS = 300
const DEFAULT_MAX_FUTURE_SKEW_SECONDS = 60
/** Each signature costs a key lookup, perhaps a query or a fetch: a request may not ask for many. */
const MAX_SIGNATURES = 5

/**
 * The absolute URL a client signed as `@target-uri`: our public origin (never the Host header) and
 * the request target exactly as received, because re-encoding it would change what was signed.
 */
export function targetUri(publicOrigin: string, rawUrl: string): string {
  return `${publicOrigin}${rawUrl}`
}

/**
 * Verifies an RFC 9421 signature as Open Payments profiles it. With several signatures, one that
 * meets every rule is enough; otherwise the first one's failure is reported.
 */
export async function verifySignature(
  req: SignedRequest,
  lookup: KeyLookup,
  opts: VerifyOptions = {},
): Promise<SignatureSuccess | SignatureFailure> {
  const inputHeader = headerValue(req.headers, 'signature-input')
  const signatureHeader = headerValue(req.headers, 'signature')
  if (!inputHeader || !signatureHeader) {
    return failure('missing_headers', 'missing Signature or Signature-Input header')
  }
  const inputs = parseDictionary(inputHeader)
  const signatures = parseDictionary(signatureHeader)
  if (!inputs || !signatures) {
    return failure('malformed', 'Signature or Signature-Input is not a valid structured field')
  }
  if (inputs.size > MAX_SIGNATURES) return failure('malformed', 'too many signatures')
  const failures: SignatureFailure[] = []
  for (const [label, input] of inputs) {
    const result = await verifyOne(req, lookup, opts, input, signatures.get(label))
    if (result.ok) return result
    failures.push(result)
  }
  return failures[0] ?? failure('malformed', 'no signature in Signature-Input')
}

async function verifyOne(
  req: SignedRequest,
  lookup: KeyLookup,
  opts: VerifyOptions,
  input: Member,
  signature: Member | undefined,
): Promise<SignatureSuccess | SignatureFailure> {
  if (!isInnerList(input)) return failure('malformed', 'signature input is not an inner list')
  if (!signature || isInnerList(signature) || signature.value.type !== 'bytes') {
    return failure('malformed', 'no matching signature in Signature header')
  }
  const components = coveredComponents(input)
  if ('reason' in components) return components
  const params = signatureParams(input.params)
  if ('reason' in params) return params

  const body = req.rawBody ?? Buffer.alloc(0)
  const required = ['@method', '@target-uri']
  if (req.headers.authorization !== undefined) required.push('authorization')
  // A body parsed without keeping its bytes (a form, text) is a body too: it must be covered, and
  // its digest, checked against no bytes, fails.
  if (body.length > 0 || declaresBody(req.headers)) required.push('content-digest')
  const uncovered = required.find((c) => !components.includes(c))
  if (uncovered) return failure('missing_component', `signature does not cover ${uncovered}`)

  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000)
  if (params.created < now - (opts.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS)) {
    return failure('stale', 'signature is too old')
  }
  if (params.created > now + (opts.maxFutureSkewSeconds ?? DEFAULT_MAX_FUTURE_SKEW_SECONDS)) {
    return failure('stale', 'signature is dated in the future')
  }
  if (params.expires !== undefined && params.expires < now) {
    return failure('stale', 'signature has expired')
  }

  const lines: string[] = []
  for (const name of components) {
    const value = componentValue(req, name)
    if (value === undefined) return failure('missing_component', `missing ${name} header`)
    lines.push(`"${name}": ${value}`)
  }
  lines.push(`"@signature-params": ${input.raw}`)

  if (components.includes('content-digest')) {
    const digest = checkContentDigest(headerValue(req.headers, 'content-digest')!, body)
    if (digest === 'malformed') return failure('malformed', 'Content-Digest is malformed')
    if (digest === 'unsupported') {
      return failure('digest_mismatch', 'Content-Digest has no sha-256 or sha-512 digest')
    }
    if (digest === 'mismatch') {
      return failure('digest_mismatch', 'Content-Digest does not match body')
    }
  }

  const jwk = await lookup(params.keyId)
  if (jwk === 'unknown_key') {
    return failure('unknown_key', 'could not find key in list of client keys')
  }
  if (jwk === 'keys_unavailable') {
    return failure('keys_unavailable', 'could not retrieve client keys')
  }
  const key = ed25519Key(jwk)
  if (!key) return failure('invalid_signature', 'client key is not an Ed25519 key')
  const sig = signature.value.value
  if (
    sig.length !== sodium.crypto_sign_BYTES ||
    !sodium.crypto_sign_verify_detached(sig, Buffer.from(lines.join('\n')), key)
  ) {
    return failure('invalid_signature', 'provided signature is invalid')
  }
  return { ok: true, keyId: params.keyId }
}

const DERIVED = new Map<string, (req: SignedRequest) => string>([
  ['@method', (req) => req.method.toUpperCase()],
  ['@target-uri', (req) => req.targetUri],
  ['@authority', (req) => new URL(req.targetUri).host],
  ['@scheme', (req) => new URL(req.targetUri).protocol.slice(0, -1)],
  ['@path', (req) => rawPathAndQuery(req.targetUri).path],
  ['@query', (req) => rawPathAndQuery(req.targetUri).query ?? '?'],
  [
    '@request-target',
    (req) => {
      const { path, query } = rawPathAndQuery(req.targetUri)
      return `${path}${query ?? ''}`
    },
  ],
])

/** The covered component names, or why they cannot be used. */
function coveredComponents(input: InnerList): string[] | SignatureFailure {
  const names: string[] = []
  for (const item of input.items) {
    if (item.value.type !== 'string') {
      return failure('malformed', 'component identifiers must be quoted strings')
    }
    const name = item.value.value
    // Parameters such as ;sf, ;bs, ;key or ;req change the value; no Open Payments client uses them.
    if (item.params.size > 0) return failure('malformed', `unsupported parameters on "${name}"`)
    if (name !== name.toLowerCase()) {
      return failure('malformed', `component "${name}" is not lower-case`)
    }
    if (name.startsWith('@') && !DERIVED.has(name)) {
      return failure('malformed', `unsupported component "${name}"`)
    }
    if (names.includes(name)) return failure('malformed', `component "${name}" is covered twice`)
    names.push(name)
  }
  return names
}

interface SignatureParams {
  keyId: string
  created: number
  expires: number | undefined
}

function signatureParams(params: Parameters): SignatureParams | SignatureFailure {
  const keyId = params.get('keyid')
  if (keyId?.type !== 'string' || keyId.value === '') {
    return failure('malformed', 'missing keyid in signature input')
  }
  const created = params.get('created')
  if (created?.type !== 'integer') return failure('malformed', 'missing created in signature input')
  const expires = params.get('expires')
  if (expires && expires.type !== 'integer') return failure('malformed', 'invalid expires')
  const alg = params.get('alg')
  if (alg && (alg.type !== 'string' || alg.value !== 'ed25519')) {
    return failure('malformed', 'unsupported alg, expected ed25519')
  }
  return { keyId: keyId.value, created: created.value, expires: expires?.value }
}

function componentValue(req: SignedRequest, name: string): string | undefined {
  const derive = DERIVED.get(name)
  return derive ? derive(req) : headerValue(req.headers, name)
}

/** A field's value as RFC 9421 section 2.1 covers it: each instance trimmed, joined by ", ". */
function headerValue(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = Object.hasOwn(headers, name) ? headers[name] : undefined
  if (value === undefined) return undefined
  return (Array.isArray(value) ? value : [value]).map((v) => v.trim()).join(', ')
}

/** Path and query as sent: URL parsing would re-encode them and resolve dot segments. */
function rawPathAndQuery(uri: string): { path: string; query: string | undefined } {
  const [, path, query] = /^[^:]+:\/\/[^/?#]*([^?#]*)(\?[^#]*)?/.exec(uri)!
  return { path: path || '/', query }
}

/**
 * Public keys by JWK object: the key caches hand out the same object while they keep it, so a
 * client's key is decoded once per cache period instead of once per request.
 */
const decoded = new WeakMap<Jwk, Buffer>()
/** An Ed25519 public key's `x`: 32 bytes in unpadded base64url. */
const ED25519_X = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/

/**
 * Verification is libsodium's (sodium-native), not Node's: OpenSSL's Ed25519 verify took 105 µs
 * here and libsodium's 50 µs, and it was the largest single cost of a signed request (a fifth of
 * the server's CPU in creating an incoming payment). libsodium is also the stricter of the two:
 * it refuses keys of small order and non-canonical signatures.
 */
function ed25519Key(jwk: Jwk): Buffer | undefined {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') return undefined
  const known = decoded.get(jwk)
  if (known) return known
  if (!ED25519_X.test(jwk.x)) return undefined
  const key = Buffer.from(jwk.x, 'base64url')
  decoded.set(jwk, key)
  return key
}

const failure = (reason: SignatureFailureReason, message: string): SignatureFailure => ({
  ok: false,
  reason,
  message,
})
