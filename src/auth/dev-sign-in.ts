import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import { safeEqual } from '../lib/secrets.ts'
import { fresh, identitySignature, startSignature } from './identity.ts'
import { authPages } from './pages.ts'

export const DEV_SIGN_IN_PATH = '/dev-sign-in'

type Query = Record<string, string | undefined>

/**
 * The development identity provider: a password form speaking the same signed redirect-and-return
 * protocol an ASE's identity provider speaks in production. Anyone with DEV_SIGN_IN_PASSWORD may act
 * for any wallet address here, which is why production refuses it.
 */
export function devSignInRoutes(app: FastifyInstance, config: Config): void {
  const identity = config.auth.identity
  if (identity.kind !== 'dev') return
  const secret = config.auth.secret
  const pages = authPages(config.brand)

  const startValid = (q: Query) =>
    q.interaction !== undefined &&
    q.return_to !== undefined &&
    q.wallet_address !== undefined &&
    q.sig !== undefined &&
    fresh(q.ts) &&
    q.return_to.startsWith(`${config.authServerUrl}/interact/`) &&
    safeEqual(
      q.sig,
      startSignature(secret, {
        interactionId: q.interaction,
        returnTo: q.return_to,
        walletAddress: q.wallet_address,
        ts: q.ts!,
      }),
    )

  const form = (q: Query, error?: string) => {
    const action = new URL(`${config.authServerUrl}${DEV_SIGN_IN_PATH}`)
    for (const k of ['interaction', 'return_to', 'wallet_address', 'ts', 'sig'])
      action.searchParams.set(k, q[k]!)
    return pages.signIn({
      action: action.pathname + action.search,
      walletAddress: q.wallet_address!,
      error,
    })
  }

  app.get<{ Querystring: Query }>(DEV_SIGN_IN_PATH, async (req, reply) => {
    if (!startValid(req.query))
      return reply
        .code(400)
        .type('text/html')
        .send(pages.message('Link expired', 'Start again from the application.'))
    return reply.type('text/html').send(form(req.query))
  })

  app.post<{ Querystring: Query; Body: Query }>(DEV_SIGN_IN_PATH, async (req, reply) => {
    const q = req.query
    if (!startValid(q))
      return reply
        .code(400)
        .type('text/html')
        .send(pages.message('Link expired', 'Start again from the application.'))
    const walletAddress = req.body?.walletAddress?.trim() ?? ''
    if (!safeEqual(req.body?.password ?? '', identity.password) || walletAddress === '') {
      return reply.code(401).type('text/html').send(form(q, 'Wrong wallet address or password.'))
    }
    const ts = String(Math.floor(Date.now() / 1000))
    const back = new URL(q.return_to!)
    back.searchParams.set('subject', walletAddress)
    back.searchParams.set('ts', ts)
    back.searchParams.set(
      'sig',
      identitySignature(secret, { interactionId: q.interaction!, subject: walletAddress, ts }),
    )
    return reply.redirect(back.href, 303)
  })
}
