import type { AccessDescription } from './describe.ts'

const html = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  )

/** Pages carry their own small stylesheet: nothing is loaded from anywhere else. */
function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)}</title>
<style>
  body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f5f7; color: #1d2330; margin: 0; }
  main { max-width: 34rem; margin: 3rem auto; background: #fff; border-radius: 12px; padding: 2rem; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; }
  .client { color: #4a5568; word-break: break-all; font-size: .9rem; }
  section { border: 1px solid #e2e8f0; border-radius: 8px; padding: .75rem 1rem; margin: 1rem 0; }
  section h2 { font-size: 1rem; margin: 0 0 .25rem; word-break: break-all; }
  ul { margin: .25rem 0; padding-left: 1.25rem; }
  .limits li { color: #9c4221; }
  form.actions { display: flex; gap: .75rem; margin-top: 1.5rem; }
  button { flex: 1; font: inherit; padding: .7rem; border-radius: 8px; border: 1px solid #cbd5e0; background: #fff; cursor: pointer; }
  button.primary { background: #2b6cb0; border-color: #2b6cb0; color: #fff; }
  label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
  input[type=text], input[type=password] { width: 100%; box-sizing: border-box; font: inherit; padding: .5rem; border: 1px solid #cbd5e0; border-radius: 6px; }
  .note { color: #718096; font-size: .85rem; }
  .error { color: #c53030; }
</style>
</head>
<body><main>
${body}
</main></body>
</html>`
}

export function consentPage(p: {
  clientName: string
  clientUrl: string
  /** The client asks only who the account holder is, not for access to the account. */
  subjectOnly: boolean
  items: AccessDescription[]
  action: string
  csrf: string
}): string {
  const items = p.items
    .map(
      (i) => `<section>
  <h2>${html(i.title)}</h2>
  <ul>${i.actions.map((a) => `<li>${html(a)}</li>`).join('')}</ul>
  ${i.limits.length ? `<ul class="limits">${i.limits.map((l) => `<li>${html(l)}</li>`).join('')}</ul>` : ''}
</section>`,
    )
    .join('\n')
  const heading = p.subjectOnly
    ? `Confirm your wallet address to ${p.clientName}?`
    : `Allow ${p.clientName} to use your account?`
  return layout(
    heading,
    `<h1>${html(heading)}</h1>
<p class="client">${html(p.clientName)} · ${html(p.clientUrl)}</p>
<p>It is asking to:</p>
${items}
<form class="actions" method="post" action="${html(p.action)}">
  <input type="hidden" name="csrf" value="${html(p.csrf)}">
  <button type="submit" name="decision" value="deny">Deny</button>
  <button type="submit" name="decision" value="accept" class="primary">Accept</button>
</form>`,
  )
}

export function signInPage(p: { action: string; walletAddress: string; error?: string }): string {
  return layout(
    'Sign in',
    `<h1>Sign in to continue</h1>
${p.error ? `<p class="error">${html(p.error)}</p>` : ''}
<form method="post" action="${html(p.action)}">
  <label for="walletAddress">Wallet address</label>
  <input type="text" id="walletAddress" name="walletAddress" value="${html(p.walletAddress)}" autocomplete="username">
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" autofocus>
  <p><button type="submit" class="primary">Sign in</button></p>
</form>
<p class="note">Development sign-in: the password is DEV_SIGN_IN_PASSWORD. Production servers hand this step to the ASE's identity provider.</p>`,
  )
}

export function messagePage(title: string, text: string): string {
  return layout(title, `<h1>${html(title)}</h1><p>${html(text)}</p>`)
}
