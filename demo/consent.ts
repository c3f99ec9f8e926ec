import { randomBytes } from 'node:crypto'
import type { AuthenticatedClient } from '@interledger/open-payments'

/** A request of the consent steps, and what they read of its answer (`fetch` gives both). */
export type Init = { method?: string; headers?: Record<string, string>; body?: string }
export type Answer = {
  status: number
  headers: { get(name: string): string | null }
  text(): Promise<string>
}

/**
 * The account holder's side of an interactive grant, over plain HTTP: what a browser does on the
 * development sign-in and consent pages (docs/authorization.md). Used by `npm run demo` and tests.
 */
export async function consentOverHttp(opts: {
  redirect: string
  walletAddress: string
  password: string
  decision: 'accept' | 'deny'
  /**
   * The HTTP client (the bench passes its own sender); redirects must not be followed. Only what
   * is read of its answers is asked for, which `fetch` gives.
   */
  fetch?: (url: string, init: Init & { redirect: 'manual' }) => Promise<Answer>
}): Promise<URL> {
  const http = opts.fetch ?? fetch
  let cookie = ''
  const go = async (url: string, init: Init = {}): Promise<Answer> => {
    const res = await http(url, {
      ...init,
      redirect: 'manual',
      headers: { ...init.headers, ...(cookie && { cookie }) },
    })
    const set = res.headers.get('set-cookie')
    if (set) cookie = set.split(';', 1)[0]!
    return res
  }
  const follow = async (res: Answer, base: string) => {
    const location = res.headers.get('location')
    if (res.status < 300 || res.status >= 400 || !location) {
      throw new Error(`expected a redirect from ${base}, got ${res.status}`)
    }
    return new URL(location, base).href
  }
  const form = (fields: Record<string, string>) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  })

  // Start: the server binds this "browser" with a cookie and sends it to sign in.
  const signIn = await follow(await go(opts.redirect), opts.redirect)
  const identity = await follow(
    await go(signIn, form({ walletAddress: opts.walletAddress, password: opts.password })),
    signIn,
  )
  const consent = await follow(await go(identity), identity)
  const page = await (await go(consent)).text()
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1]
  if (!csrf) throw new Error('no consent form')
  const finish = await follow(await go(consent, form({ csrf, decision: opts.decision })), consent)
  return new URL(finish)
}

/**
 * An interactive outgoing-payment grant through the official client: the request, the account
 * holder's consent over HTTP (above), the continuation. The demos and tests all take these steps.
 */
export async function consentedOutgoingGrant(
  client: AuthenticatedClient,
  opts: {
    authServer: string
    walletAddress: string
    password: string
    actions?: string[]
    limits?: Record<string, unknown>
  },
): Promise<{ accessToken: string; consentPage: string; interactRef: string }> {
  const pending = await client.grant.request(
    { url: opts.authServer },
    {
      access_token: {
        access: [
          {
            type: 'outgoing-payment',
            actions: (opts.actions ?? ['create', 'read']) as never,
            identifier: opts.walletAddress,
            ...(opts.limits && { limits: opts.limits as never }),
          },
        ],
      },
      interact: {
        start: ['redirect'],
        finish: {
          method: 'redirect',
          uri: 'http://127.0.0.1:9/return',
          nonce: randomBytes(8).toString('hex'),
        },
      },
    },
  )
  if (!('interact' in pending)) throw new Error('expected an interactive grant')
  const finish = await consentOverHttp({
    redirect: pending.interact.redirect,
    walletAddress: opts.walletAddress,
    password: opts.password,
    decision: 'accept',
  })
  const interactRef = finish.searchParams.get('interact_ref')!
  const grant = await client.grant.continue(
    { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
    { interact_ref: interactRef },
  )
  if (!('access_token' in grant) || !grant.access_token) throw new Error('expected a token')
  return {
    accessToken: grant.access_token.value,
    consentPage: pending.interact.redirect,
    interactRef,
  }
}
