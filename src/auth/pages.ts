import { type Brand, brandCssVariables, logoSource } from '../branding/brand.ts'
import { pageHeaders, styleHash } from '../http/page-security.ts'
import { html, raw, type SafeHtml } from '../lib/html.ts'
import type { AccessDescription } from './describe.ts'

/** The pages of the authorization server's front channel, in the ASE's brand. */
export interface AuthPages {
  consent(p: {
    clientName: string
    clientUrl: string
    /** The client asks only who the account holder is, not for access to the account. */
    subjectOnly: boolean
    items: AccessDescription[]
    action: string
    csrf: string
  }): string
  signIn(p: { action: string; walletAddress: string; error?: string }): string
  message(title: string, text: string): string
  /** Security headers for every HTML response of the auth listener (see `securePages`). */
  headers: Record<string, string>
}

/** The pages' own stylesheet: nothing is loaded from anywhere else. */
const CSS = `
  * { box-sizing: border-box; }
  body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--brand-soft); color: #1d2330; margin: 0; min-height: 100vh; }
  .brand { display: flex; align-items: center; justify-content: center; gap: .6rem; padding: 2rem 1rem 0; font-weight: 650; font-size: 1.05rem; color: var(--brand-strong); }
  .brand img { height: 40px; max-width: 180px; object-fit: contain; }
  main { max-width: 34rem; margin: 1.25rem auto 3rem; background: #fff; border-radius: 14px; padding: 2rem; box-shadow: 0 1px 2px rgba(16,24,40,.06), 0 8px 24px rgba(16,24,40,.08); border-top: 4px solid var(--brand); }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; line-height: 1.3; }
  .client { color: #4a5568; word-break: break-all; font-size: .9rem; }
  section { border: 1px solid #e2e8f0; border-radius: 10px; padding: .75rem 1rem; margin: 1rem 0; }
  section h2 { font-size: 1rem; margin: 0 0 .25rem; word-break: break-all; }
  ul { margin: .25rem 0; padding-left: 1.25rem; }
  .limits li { color: #9c4221; }
  form.actions { display: flex; gap: .75rem; margin-top: 1.5rem; }
  button { flex: 1; font: inherit; font-weight: 600; padding: .7rem; border-radius: 8px; border: 1px solid #cbd5e0; background: #fff; color: #1d2330; cursor: pointer; }
  button:focus-visible, input:focus-visible { outline: 3px solid var(--brand); outline-offset: 2px; }
  button.primary { background: var(--brand); border-color: var(--brand); color: var(--brand-text); }
  button.primary:hover { background: var(--brand-strong); border-color: var(--brand-strong); }
  label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
  input[type=text], input[type=password] { width: 100%; font: inherit; padding: .5rem; border: 1px solid #cbd5e0; border-radius: 6px; }
  .note { color: #718096; font-size: .85rem; }
  .error { color: #c53030; }
  footer { text-align: center; color: #718096; font-size: .8rem; padding-bottom: 2rem; }
`

export function authPages(brand: Brand): AuthPages {
  // Computed once: the brand is fixed for the life of the process, so the hash is too. The text
  // is ours plus validated hex colours, and goes in raw: escaping would change what is hashed.
  const style = `:root { ${brandCssVariables(brand)}; }${CSS}`
  const logo = logoSource(brand)
  const headers = pageHeaders({ style: [styleHash(style)], img: logo ? [logo] : [] })

  const layout = (title: string, body: SafeHtml) =>
    html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · ${brand.name}</title>
<style>${raw(style)}</style>
</head>
<body>
<div class="brand">${brand.logoUrl ? html`<img src="${brand.logoUrl}" alt="${brand.name}">` : brand.name}</div>
<main>
${body}
</main>
<footer>${brand.name}</footer>
</body>
</html>`.value

  return {
    headers,
    consent: (p) => {
      const heading = p.subjectOnly
        ? `Confirm your wallet address to ${p.clientName}?`
        : `Allow ${p.clientName} to use your account?`
      const items = p.items.map(
        (i) => html`<section>
  <h2>${i.title}</h2>
  <ul>${i.actions.map((a) => html`<li>${a}</li>`)}</ul>
  ${i.limits.length > 0 && html`<ul class="limits">${i.limits.map((l) => html`<li>${l}</li>`)}</ul>`}
</section>
`,
      )
      return layout(
        heading,
        html`<h1>${heading}</h1>
<p class="client">${p.clientName} · ${p.clientUrl}</p>
<p>It is asking to:</p>
${items}
<form class="actions" method="post" action="${p.action}">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <button type="submit" name="decision" value="deny">Deny</button>
  <button type="submit" name="decision" value="accept" class="primary">Accept</button>
</form>`,
      )
    },
    signIn: (p) =>
      layout(
        'Sign in',
        html`<h1>Sign in to continue</h1>
${p.error && html`<p class="error">${p.error}</p>`}
<form method="post" action="${p.action}">
  <label for="walletAddress">Wallet address</label>
  <input type="text" id="walletAddress" name="walletAddress" value="${p.walletAddress}" autocomplete="username">
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" autofocus>
  <p><button type="submit" class="primary">Sign in</button></p>
</form>
<p class="note">Development sign-in: the password is DEV_SIGN_IN_PASSWORD. Production servers hand this step to the ASE's identity provider.</p>`,
      ),
    message: (title, text) => layout(title, html`<h1>${title}</h1><p>${text}</p>`),
  }
}
