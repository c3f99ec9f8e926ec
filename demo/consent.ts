/**
 * The account holder's side of an interactive grant, over plain HTTP: what a browser does on the
 * development sign-in and consent pages (docs/authorization.md). Used by `npm run demo` and tests.
 */
export async function consentOverHttp(opts: {
  redirect: string
  walletAddress: string
  password: string
  decision: 'accept' | 'deny'
}): Promise<URL> {
  let cookie = ''
  const go = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie && { cookie }) },
    })
    const set = res.headers.get('set-cookie')
    if (set) cookie = set.split(';', 1)[0]!
    return res
  }
  const follow = async (res: Response, base: string) => {
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
