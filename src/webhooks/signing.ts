import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'

/** A new endpoint secret in the Standard Webhooks form: `whsec_` and 32 random bytes, base64. */
export const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`

/** Whether a secret is in the Standard Webhooks form with at least 24 bytes of key. */
export const isWebhookSecret = (v: string) =>
  /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v.slice(6), 'base64').length >= 24

/**
 * The Standard Webhooks headers of one attempt. The timestamp is the attempt's (receivers refuse
 * old ones), the id the event's (the same on every attempt, so receivers can drop repeats). Each
 * secret signs: during a rotation the previous secret's signature is sent too.
 */
export function signedHeaders(
  secrets: string[],
  msg: { id: string; timestamp: Date; body: string },
): Record<string, string> {
  return {
    'webhook-id': msg.id,
    'webhook-timestamp': String(Math.floor(msg.timestamp.getTime() / 1000)),
    'webhook-signature': secrets
      .map((s) => new Webhook(s).sign(msg.id, msg.timestamp, msg.body))
      .join(' '),
  }
}
