import type { Brand } from '../../branding/brand.ts'
import { html, type SafeHtml } from '../../lib/html.ts'

/** Where the console's stylesheet and icon are served (content-hashed, so cached for good). */
export interface Assets {
  css: string
  icon: string
}

export type Section = 'overview' | 'wallet-addresses' | 'payments' | 'webhooks'

const NAV: [Section, string, string][] = [
  ['overview', 'Overview', '/console'],
  ['wallet-addresses', 'Wallet addresses', '/console/wallet-addresses'],
  ['payments', 'Payments', '/console/incoming-payments'],
  ['webhooks', 'Webhooks', '/console/webhooks'],
]

const head = (brand: Brand, assets: Assets, title: string) =>
  html`<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${title} · ${brand.name} console</title>
<link rel="stylesheet" href="${assets.css}">
<link rel="icon" href="${assets.icon}" type="image/svg+xml">
</head>`

/** The brand's logo, or its initial on the brand colour when it has none. */
export const brandmark = (brand: Brand) =>
  brand.logoUrl
    ? html`<img src="${brand.logoUrl}" alt="${brand.name}">`
    : html`<span class="monogram" aria-hidden="true">${[...brand.name][0]!.toUpperCase()}</span><span>${brand.name}</span>`

/** A signed-in page: header with navigation and sign-out (a CSRF-protected POST). */
export function page(p: {
  brand: Brand
  assets: Assets
  csrf: string
  section: Section
  title: string
  body: SafeHtml
}): string {
  return html`<!doctype html>
<html lang="en">
${head(p.brand, p.assets, p.title)}
<body>
<header class="topbar"><div class="wrap inner">
  <a class="brandmark" href="/console">${brandmark(p.brand)}<span class="product">Operator console</span></a>
  <nav class="main" aria-label="Console">${NAV.map(
    ([section, label, href]) =>
      html`<a href="${href}"${section === p.section ? html` aria-current="page"` : ''}>${label}</a>`,
  )}</nav>
  <form class="signout" method="post" action="/console/sign-out">
    <input type="hidden" name="csrf" value="${p.csrf}">
    <button type="submit">Sign out</button>
  </form>
</div></header>
<main class="wrap">
${p.body}
</main>
</body>
</html>`.value
}

export function signInPage(p: {
  brand: Brand
  assets: Assets
  next?: string
  error?: string
  notice?: string
}): string {
  return html`<!doctype html>
<html lang="en">
${head(p.brand, p.assets, 'Sign in')}
<body class="signin">
<main class="signin-card">
  <div class="brandmark">${brandmark(p.brand)}</div>
  <h1>Operator console</h1>
  <p class="lead">Sign in with the admin API key.</p>
  ${p.error && html`<p class="error" role="alert">${p.error}</p>`}
  ${p.notice && html`<p class="notice">${p.notice}</p>`}
  <form method="post" action="/console/sign-in">
    ${p.next && html`<input type="hidden" name="next" value="${p.next}">`}
    <label for="key">Admin API key</label>
    <input type="password" id="key" name="key" autocomplete="current-password" required autofocus>
    <button type="submit" class="btn">Sign in</button>
  </form>
  <p class="note">The key is ADMIN_API_KEY of this server. It is checked once and never stored in your browser.</p>
</main>
</body>
</html>`.value
}

/** A page for errors, signed in or not. */
export function messagePage(p: {
  brand: Brand
  assets: Assets
  title: string
  text: string
}): string {
  return html`<!doctype html>
<html lang="en">
${head(p.brand, p.assets, p.title)}
<body class="signin">
<main class="signin-card">
  <div class="brandmark">${brandmark(p.brand)}</div>
  <h1>${p.title}</h1>
  <p class="lead">${p.text}</p>
  <a class="btn" href="/console">Back to the console</a>
</main>
</body>
</html>`.value
}

/** The console's icon: the brand's initial on its colour. */
export function iconSvg(brand: Brand, textColor: string): string {
  return html`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="${brand.primaryColor}"/><text x="16" y="22" font-family="system-ui, sans-serif" font-size="17" font-weight="700" text-anchor="middle" fill="${textColor}">${[...brand.name][0]!.toUpperCase()}</text></svg>`
    .value
}
