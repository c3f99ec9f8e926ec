import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto'

/**
 * STREAM's cryptography (RFC 29 §5.1, §6): keys derived from the connection's shared secret by
 * HMAC-SHA256, packets sealed with AES-256-GCM as `IV (12) | tag (16) | ciphertext`, and a
 * fulfillment that only the holder of the secret can compute from the sealed data.
 */

const IV_BYTES = 12
const TAG_BYTES = 16

export const hmac = (key: Buffer, message: string | Buffer): Buffer =>
  createHmac('sha256', key).update(message).digest()

export const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest()

export const encryptionKey = (sharedSecret: Buffer) => hmac(sharedSecret, 'ilp_stream_encryption')

export const fulfillmentKey = (sharedSecret: Buffer) => hmac(sharedSecret, 'ilp_stream_fulfillment')

export function encrypt(
  key: Buffer,
  plaintext: Buffer,
  iv: Buffer = randomBytes(IV_BYTES),
): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext])
}

/** The plaintext, or undefined when the data was not sealed with this key (or was altered). */
export function decrypt(key: Buffer, data: Buffer): Buffer | undefined {
  // Too short to hold an IV and a full tag: never hand GCM a truncated tag.
  if (data.length < IV_BYTES + TAG_BYTES) return undefined
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES))
    decipher.setAuthTag(data.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
    return Buffer.concat([decipher.update(data.subarray(IV_BYTES + TAG_BYTES)), decipher.final()])
  } catch {
    return undefined
  }
}

/** The fulfillment of a Prepare carrying `data`; its SHA-256 is the condition. */
export const fulfillmentOf = (key: Buffer, data: Buffer) => hmac(key, data)

/** A condition nobody can fulfill: a rate probe's (RFC 29 §6.1). */
export const unfulfillableCondition = () => randomBytes(32)
