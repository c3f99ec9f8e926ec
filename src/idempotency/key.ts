import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { HttpError } from '../lib/errors.ts'

const PRINTABLE_ASCII = /^[\x20-\x7e]{1,255}$/
// RFC 8941 sf-string: printable ASCII between double quotes, with `"` and `\` escaped by `\`.
const SF_STRING = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/

/**
 * The key from an `Idempotency-Key` header value. The draft defines it as a structured-field
 * string (`"abc"`); clients commonly send the bare value, so both are accepted and mean the same key.
 */
export function parseIdempotencyKey(value: string | string[]): string {
  if (typeof value === 'string') {
    const key = value.startsWith('"') ? SF_STRING.exec(value)?.[1]?.replace(/\\(.)/g, '$1') : value
    if (key !== undefined && PRINTABLE_ASCII.test(key)) return key
  }
  throw new HttpError(
    400,
    'invalid_request',
    'Idempotency-Key must be 1 to 255 printable ASCII characters, optionally as a quoted string',
  )
}

/** What makes two requests "the same request": method, path and query, and body bytes. */
export function requestFingerprint(req: FastifyRequest): string {
  // The method and request target contain no spaces or line breaks, so the parts cannot run together.
  const hash = createHash('sha256').update(`${req.method} ${req.url}\n`)
  if (req.rawBody) hash.update(req.rawBody)
  // Only the JSON parser keeps the raw bytes; other parsers (url-encoded forms) leave the parsed body.
  else if (req.body !== undefined) hash.update(JSON.stringify(req.body))
  return hash.digest('base64url')
}
