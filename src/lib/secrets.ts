import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** An unguessable token: 32 random bytes, base64url. */
export const newToken = (bytes = 32) => randomBytes(bytes).toString('base64url')

/** What is stored instead of a token: its SHA-256, base64url. */
export const hashToken = (value: string) => createHash('sha256').update(value).digest('base64url')

export const hmac = (key: string, data: string) =>
  createHmac('sha256', key).update(data).digest('base64url')

/** Compares two strings in time that depends only on their lengths' digests. */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest()
  const db = createHash('sha256').update(b).digest()
  return timingSafeEqual(da, db)
}
