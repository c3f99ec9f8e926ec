import { hmac, safeEqual } from '../lib/secrets.ts'

/** What an identity step knows about the interaction it authenticates the account holder for. */
export interface IdentityRequest {
  interactionId: string
  /** Where the identity provider sends the browser back to (`…/identity`). */
  returnTo: string
  /** The wallet address the client asks access to; the account holder must control it. */
  walletAddress: string
  clientName: string
}

export type IdentityResult = { subject: string } | { denied: true } | { error: string }

/**
 * The identity step of an interaction: who is the account holder? `begin` says where to send the
 * browser; the provider later sends it back to `returnTo` and `complete` reads the answer. Embedders
 * can pass their own implementation to `createListeners`.
 */
export interface IdentityProvider {
  begin(req: IdentityRequest): string
  /**
   * Reads the provider's answer from the return's query. Called once per return to `returnTo`,
   * before the server checks that the browser is the one that started the interaction (which it
   * then does before acting on the answer).
   */
  complete(interactionId: string, query: Record<string, string | undefined>): IdentityResult
}

const MAX_SKEW_SECONDS = 300

export const startSignature = (
  secret: string,
  r: { interactionId: string; returnTo: string; walletAddress: string; ts: string },
) => hmac(secret, ['start', r.interactionId, r.returnTo, r.walletAddress, r.ts].join('\n'))

export const identitySignature = (
  secret: string,
  r: { interactionId: string; subject: string; ts: string },
) => hmac(secret, ['identity', r.interactionId, r.subject, r.ts].join('\n'))

export const fresh = (ts: string | undefined, now = Date.now()) =>
  ts !== undefined && /^\d{1,12}$/.test(ts) && Math.abs(now / 1000 - Number(ts)) <= MAX_SKEW_SECONDS

/**
 * The documented signed redirect-and-return (docs/authorization.md): the browser goes to `url` with
 * the interaction, the wallet address and a return URL, HMAC-signed with the shared secret; the
 * identity provider authenticates the account holder and redirects to the return URL with
 * `subject` (the wallet address they control), `ts` and `sig`, or with `error=access_denied`.
 */
export function signedRedirectIdentity(url: string, secret: string): IdentityProvider {
  return {
    begin(req) {
      const ts = String(Math.floor(Date.now() / 1000))
      const target = new URL(url)
      target.searchParams.set('interaction', req.interactionId)
      target.searchParams.set('return_to', req.returnTo)
      target.searchParams.set('wallet_address', req.walletAddress)
      target.searchParams.set('client_name', req.clientName)
      target.searchParams.set('ts', ts)
      target.searchParams.set('sig', startSignature(secret, { ...req, ts }))
      return target.href
    },
    complete(interactionId, q) {
      const subject = q.error === 'access_denied' ? '' : q.subject
      if (subject === undefined || q.sig === undefined || !fresh(q.ts)) {
        return { error: 'the identity provider’s answer is missing or expired' }
      }
      if (!safeEqual(q.sig, identitySignature(secret, { interactionId, subject, ts: q.ts! }))) {
        return { error: 'the identity provider’s answer is not signed correctly' }
      }
      return subject === '' ? { denied: true } : { subject }
    },
  }
}
