import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'

/** What a listener's HTML pages may load; everything else is refused (`default-src 'none'`). */
export interface PagePolicy {
  /** Stylesheet sources: `'self'`, or hashes of inline `<style>` blocks (see `styleHash`). */
  style: string[]
  /** Image sources besides none, e.g. `'self'`, `data:`, a logo's origin. */
  img: string[]
  /**
   * Where forms may post. Left out where a form's answer redirects to another origin (the consent
   * page ends at the client's finish URL), because browsers apply it to redirects too.
   */
  formAction?: string[]
}

/** The CSP source of an inline `<style>` block with exactly this content. */
export const styleHash = (css: string) =>
  `'sha256-${createHash('sha256').update(css).digest('base64')}'`

/**
 * The headers every HTML page of a listener carries: a Content Security Policy without
 * `unsafe-inline` and with no script at all, no framing (clickjacking), no MIME sniffing, no
 * referrer to other sites.
 */
export function pageHeaders(policy: PagePolicy): Record<string, string> {
  const csp = [
    "default-src 'none'",
    `style-src ${policy.style.join(' ')}`,
    policy.img.length > 0 && `img-src ${policy.img.join(' ')}`,
    policy.formAction && `form-action ${policy.formAction.join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].filter(Boolean)
  return {
    'content-security-policy': csp.join('; '),
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
  }
}

/** Adds `headers` to every `text/html` response of `app` (and its child contexts). */
export function securePages(app: FastifyInstance, headers: Record<string, string>): void {
  app.addHook('onSend', async (_req, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html'))
      reply.headers(headers)
    return payload
  })
}
