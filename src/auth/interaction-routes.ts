import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Deps } from '../deps.ts'
import { hashToken, hmac, newToken, safeEqual } from '../lib/secrets.ts'
import { walletAddressPath, walletAddressUrl } from '../wallet-addresses/urls.ts'
import { needsInteraction } from './access.ts'
import { describeAccess, describeSubject } from './describe.ts'
import { findGrant, type Grant, updateGrant } from './grants.ts'
import type { IdentityProvider, IdentityResult } from './identity.ts'
import { answerConsent, bindBrowser, signedInOwner } from './interaction-steps.ts'
import { authPages } from './pages.ts'

const COOKIE = 'op_interaction'

type Params = { id: string; nonce: string }
type Req = FastifyRequest<{ Params: Params }>

/**
 * The front channel of an interactive grant: the browser opens `interact.redirect`, the identity
 * step says who the account holder is, the consent page shows what the client asks for, and the
 * decision goes back to the client by the finish redirect (or by polling when it gave none). The
 * browser that started the interaction is bound to it by a cookie; every later step checks it.
 */
export function interactionRoutes(
  app: FastifyInstance,
  deps: Deps,
  identity: IdentityProvider,
): void {
  const { config, db, clients } = deps
  const pages = authPages(config.brand)
  const secure = config.authServerUrl.startsWith('https:')
  // The step's own URL: every step finds its grant by this id and nonce.
  const base = (at: Params) => `/interact/${at.id}/${at.nonce}`

  const html = (reply: FastifyReply, status: number, body: string) =>
    reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(body)

  /** The pending, unexpired grant of this interaction; anything else ends the interaction. */
  const load = async (req: Req, reply: FastifyReply): Promise<Grant | undefined> => {
    const grant = await findGrant(db, { interactId: req.params.id })
    if (!grant?.interaction || !safeEqual(grant.interaction.nonce, req.params.nonce)) {
      html(reply, 404, pages.message('Unknown request', 'This link is not valid.'))
      return undefined
    }
    if (grant.state !== 'pending' || grant.interaction.expiresAt <= new Date()) {
      finish(
        reply,
        grant,
        { result: 'grant_invalid' },
        'This request has expired or was already answered.',
      )
      return undefined
    }
    return grant
  }

  const cookieValue = (req: FastifyRequest) =>
    (req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim().split('='))
      .find(([k]) => k === COOKIE)?.[1]

  /** The grant, if this browser is the one that started the interaction. */
  const session = async (req: Req, reply: FastifyReply) => {
    const grant = await load(req, reply)
    if (!grant) return undefined
    const value = cookieValue(req)
    if (
      !value ||
      !grant.interaction!.sessionHash ||
      !safeEqual(hashToken(value), grant.interaction!.sessionHash)
    ) {
      html(
        reply,
        403,
        pages.message(
          'Start again',
          'Open the link from the application in this browser to continue.',
        ),
      )
      return undefined
    }
    return { grant, value }
  }

  const finish = (
    reply: FastifyReply,
    grant: Grant,
    params: Record<string, string>,
    text: string,
  ) => {
    const f = grant.interaction?.finish
    if (!f)
      return html(
        reply,
        200,
        pages.message('Done', `${text} You can close this window and return to the application.`),
      )
    const target = new URL(f.uri)
    for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v)
    return reply.header('cache-control', 'no-store').redirect(target.href, 302)
  }

  const clientName = async (grant: Grant) => {
    if (!('walletAddress' in grant.client)) return { name: 'An application', url: '' }
    const doc = await clients.walletAddress(grant.client.walletAddress)
    return { name: doc?.publicName ?? grant.client.walletAddress, url: grant.client.walletAddress }
  }

  /**
   * Whether someone other than the wallet address's account holder may answer: only a subject
   * grant that asks for no access needing consent. Their answer proves nothing, and the client is
   * told so at the continuation; access to an account is only ever shown to its holder.
   */
  const othersMayAnswer = (grant: Grant) =>
    grant.subject !== undefined &&
    !grant.access.some((item) => needsInteraction(item, config.auth.interaction))

  const ownerUrl = async (grant: Grant) => {
    const wa = grant.walletAddressId
      ? await deps.walletAddresses.byId(grant.walletAddressId)
      : undefined
    return wa ? walletAddressUrl(config, wa.path) : ''
  }

  app.get<{ Params: Params }>('/interact/:id/:nonce', async (req, reply) => {
    const value = newToken()
    const sessionHash = hashToken(value)
    let grant = await bindBrowser(db, req.params, sessionHash)
    if (!grant) {
      grant = await load(req, reply)
      if (!grant) return
      // As `bindBrowser` does: this browser starts signed in as nobody.
      await updateGrant(db, grant.id, {
        sessionHash,
        signedInAs: null,
        subjectWalletAddressId: null,
      })
    }
    const maxAge = Math.max(
      0,
      Math.floor((grant.interaction!.expiresAt.getTime() - Date.now()) / 1000),
    )
    reply.header(
      'set-cookie',
      `${COOKIE}=${value}; Path=${base(req.params)}; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
    )
    const target = identity.begin({
      interactionId: grant.interaction!.id,
      returnTo: `${config.authServerUrl}${base(req.params)}/identity`,
      walletAddress: await ownerUrl(grant),
      clientName: (await clientName(grant)).name,
    })
    return reply.header('cache-control', 'no-store').redirect(target, 302)
  })

  /**
   * The identity step's usual outcome in one statement: the holder of the grant's own wallet
   * address signed in, in the browser that started the interaction. Undefined: anything else.
   */
  const ownerSignedIn = async (req: Req, result: IdentityResult) => {
    const value = cookieValue(req)
    if (!value || !('subject' in result)) return undefined
    const path = walletAddressPath(config, result.subject)
    const wa = path === undefined ? undefined : await deps.walletAddresses.byPath(path)
    if (!wa) return undefined
    return signedInOwner(db, req.params, hashToken(value), {
      subject: result.subject,
      walletAddressId: wa.id,
    })
  }

  app.get<{ Params: Params; Querystring: Record<string, string | undefined> }>(
    '/interact/:id/:nonce/identity',
    async (req, reply) => {
      // The provider's answer is read once, before the browser's session is checked.
      const result = identity.complete(req.params.id, req.query)
      if (await ownerSignedIn(req, result)) {
        return reply
          .header('cache-control', 'no-store')
          .redirect(`${base(req.params)}/consent`, 303)
      }
      const s = await session(req, reply)
      if (!s) return
      if ('error' in result) return html(reply, 400, pages.message('Sign-in failed', result.error))
      if ('denied' in result) return decide(reply, s.grant, 'deny')
      const isOwner = result.subject === (await ownerUrl(s.grant))
      if (!isOwner && !othersMayAnswer(s.grant)) {
        return html(
          reply,
          403,
          pages.message(
            'Wrong account',
            `You signed in as ${result.subject}, but the request is for another wallet address.`,
          ),
        )
      }
      await updateGrant(db, s.grant.id, {
        signedInAs: result.subject,
        subjectWalletAddressId: isOwner ? s.grant.walletAddressId : null,
      })
      return reply.header('cache-control', 'no-store').redirect(`${base(req.params)}/consent`, 303)
    },
  )

  const csrfToken = (sessionValue: string) => hmac(config.auth.secret, `csrf:${sessionValue}`)

  app.get<{ Params: Params }>('/interact/:id/:nonce/consent', async (req, reply) => {
    const s = await session(req, reply)
    if (!s) return
    const i = s.grant.interaction!
    if (!i.signedInAs) {
      return html(
        reply,
        403,
        pages.message('Sign in first', 'Open the link from the application again.'),
      )
    }
    const client = await clientName(s.grant)
    const subject = s.grant.subject
    return html(
      reply,
      200,
      pages.consent({
        clientName: client.name,
        clientUrl: client.url,
        subjectOnly: s.grant.access.length === 0,
        items: [
          ...(subject !== undefined
            ? [
                describeSubject(
                  subject,
                  client.name,
                  i.subjectWalletAddressId ? null : i.signedInAs,
                ),
              ]
            : []),
          ...s.grant.access.map(describeAccess),
        ],
        action: `${base(req.params)}/consent`,
        csrf: csrfToken(s.value),
      }),
    )
  })

  app.post<{ Params: Params; Body: Record<string, string | undefined> }>(
    '/interact/:id/:nonce/consent',
    async (req, reply) => {
      const { decision, csrf } = req.body ?? {}
      // The usual answer, from the signed-in browser with its form, in one statement.
      const value = cookieValue(req)
      if (value && csrf && safeEqual(csrf, csrfToken(value))) {
        if (decision === 'accept' || decision === 'deny') {
          const ref = newToken(16)
          const grant = await answerConsent(
            db,
            req.params,
            hashToken(value),
            decision === 'accept' ? { decision, refHash: hashToken(ref) } : { decision },
          )
          if (grant) return answered(reply, grant, decision, ref)
        }
      }
      const s = await session(req, reply)
      if (!s) return
      if (!s.grant.interaction!.signedInAs || !csrf || !safeEqual(csrf, csrfToken(s.value))) {
        return html(reply, 403, pages.message('Start again', 'This form is no longer valid.'))
      }
      if (decision !== 'accept' && decision !== 'deny') {
        return html(reply, 400, pages.message('Choose', 'Accept or deny the request.'))
      }
      return decide(reply, s.grant, decision)
    },
  )

  const decide = async (reply: FastifyReply, grant: Grant, decision: 'accept' | 'deny') => {
    const ref = newToken(16)
    // Only the first answer counts: the update applies while the grant is still pending.
    const changed = await updateGrant(
      db,
      grant.id,
      decision === 'accept'
        ? { state: 'approved', refHash: hashToken(ref) }
        : { state: 'finalized', finalization: 'rejected' },
      { whileState: 'pending' },
    )
    if (!changed)
      return finish(reply, grant, { result: 'grant_invalid' }, 'This request was already answered.')
    return answered(reply, grant, decision, ref)
  }

  /** The client's way back once the grant is answered (`ref`: its `interact_ref` if accepted). */
  const answered = (
    reply: FastifyReply,
    grant: Grant,
    decision: 'accept' | 'deny',
    ref: string,
  ) => {
    if (decision === 'deny')
      return finish(reply, grant, { result: 'grant_rejected' }, 'You denied the request.')
    const i = grant.interaction!
    const hash = i.finish
      ? createHash('sha256')
          .update(`${i.finish.clientNonce}\n${i.nonce}\n${ref}\n${config.authServerUrl}/`)
          .digest(config.auth.finishHashEncoding)
      : ''
    return finish(reply, grant, { hash, interact_ref: ref }, 'You accepted the request.')
  }
}
