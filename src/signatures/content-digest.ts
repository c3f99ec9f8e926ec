import { createHash } from 'node:crypto'
import { isInnerList, parseDictionary } from './structured-fields.ts'

/** RFC 9530 names of the digests we compute, with their node:crypto names. */
const ALGORITHMS = new Map([
  ['sha-256', 'sha256'],
  ['sha-512', 'sha512'],
])

export type DigestCheck = 'ok' | 'malformed' | 'unsupported' | 'mismatch'

/**
 * Checks a Content-Digest field value against the body bytes. Algorithms we do not know are
 * ignored; every one we know must match, and at least one must be present.
 */
export function checkContentDigest(header: string, body: Buffer): DigestCheck {
  const dict = parseDictionary(header)
  if (!dict) return 'malformed'
  let checked = 0
  for (const [name, member] of dict) {
    const algorithm = ALGORITHMS.get(name)
    if (!algorithm) continue
    if (isInnerList(member) || member.value.type !== 'bytes') return 'malformed'
    if (!createHash(algorithm).update(body).digest().equals(member.value.value)) return 'mismatch'
    checked++
  }
  return checked > 0 ? 'ok' : 'unsupported'
}
