import { createHash } from 'node:crypto'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { logoSource, textOn } from '../../branding/brand.ts'
import { isDatabaseUnreachable, RETRY_AFTER_SECONDS } from '../../db/outage.ts'
import type { Deps } from '../../deps.ts'
import { pageHeaders, securePages } from '../../http/page-security.ts'
import { HttpError } from '../../lib/errors.ts'
import type { SafeHtml } from '../../lib/html.ts'
import { safeEqual } from '../../lib/secrets.ts'
import type { CredentialGuard } from '../../rate-limit/hooks.ts'
import { consolePath, form, readCookie } from './forms.ts'
import { type Assets, iconSvg, messagePage, page, type Section, signInPage } from './layout.ts'
import { pageRoutes } from './page-routes.ts'
import { closeSession, csrfToken, csrfValid, openSession, sessionValid } from './session.ts'
import { consoleCss } from './styles.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A route of the operator console: not part of the admin API or its OpenAPI document, and
     * signed in by the console's own session cookie instead of the API key.
     */
    console?: boolean
    /** A console route that needs no session: sign-in, the stylesheet, the not-found page. */
    signedOut?: boolean
  }
}

const COOKIE = 'op_console'

/**
 * The operator console: server-rendered pages on the admin listener, built on the admin API's own
 * services. Signed in with the admin API key, which opens a server-side session (an HttpOnly,
 * SameSite=Strict cookie); forms that change something carry the session's CSRF token and are
 * refused when the browser says they came from another site (Fetch Metadata). No script runs on
 * any page, and the Content Security Policy says so.
 */
export function consoleRoutes(app: FastifyInstance, deps: Deps, guard: CredentialGuard): void {
  const { config, db } = deps
  if (!config.console.enabled) return
  const brand = config.brand
  const policy = {
    adminApiKey: config.adminApiKey,
    sessionSeconds: config.console.sessionSeconds,
    idleSeconds: config.console.idleSeconds,
  }

  const css = consoleCss(brand)
  const icon = iconSvg(brand, textOn(brand.primaryColor))
  const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16)
  const assets: Assets = {
    css: `/console/assets/console-${hash(css)}.css`,
    icon: `/console/assets/icon-${hash(icon)}.svg`,
  }
  const logo = logoSource(brand)
  const headers = {
    ...pageHeaders({
      style: ["'self'"],
      img: ["'self'", ...(logo ? [logo] : [])],
      formAction: ["'self'"],
    }),
    // Pages show balances and payments: never kept by the browser or a proxy.
    'cache-control': 'no-store',
  }

  const sessions = new WeakMap<FastifyRequest, string>()
  const sessionOf = (req: FastifyRequest) => sessions.get(req)!

  const sendHtml = (reply: FastifyReply, status: number, body: string) =>
    reply.code(status).type('text/html; charset=utf-8').send(body)
  const message = (reply: FastifyReply, status: number, title: string, text: string) =>
    sendHtml(reply, status, messagePage({ brand, assets, title, text }))
  const render = (
    req: FastifyRequest,
    reply: FastifyReply,
    section: Section,
    title: string,
    body: SafeHtml,
  ) =>
    sendHtml(
      reply,
      200,
      page({ brand, assets, csrf: csrfToken(sessionOf(req)), section, title, body }),
    )

  const cookie = (req: FastifyRequest, value: string, maxAge: number) =>
    `${COOKIE}=${value}; Path=/console; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${req.protocol === 'https' ? '; Secure' : ''}`

  app.register(
    async (c) => {
      c.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: 16 * 1024 },
        (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
      )
      securePages(c, headers)

      c.addHook('onRequest', async (req, reply) => {
        if (req.method === 'POST') {
          // Fetch Metadata: the browser itself says where a request comes from. Only this origin's
          // own pages may post (an absent header is an older browser: the CSRF token still holds).
          const site = req.headers['sec-fetch-site']
          if (site !== undefined && site !== 'same-origin')
            return message(reply, 403, 'Refused', 'This form was sent from another site.')
        }
        if (req.routeOptions.config.signedOut) return
        const token = readCookie(req, COOKIE)
        if (token && (await sessionValid(db, token, policy))) {
          sessions.set(req, token)
          return
        }
        if (req.method === 'GET' || req.method === 'HEAD') {
          const next = consolePath(req.url)
          const to = next === '/console' ? '' : `?next=${encodeURIComponent(next)}`
          return reply.redirect(`/console/sign-in${to}`, 303)
        }
        return message(reply, 403, 'Signed out', 'Your session has ended. Sign in again.')
      })

      c.addHook('preHandler', async (req, reply) => {
        if (req.method !== 'POST' || req.routeOptions.config.signedOut) return
        const body = req.body as Record<string, unknown> | undefined
        if (!csrfValid(sessionOf(req), body?.csrf))
          return message(reply, 403, 'Refused', 'This form is no longer valid. Reload the page.')
      })

      c.setErrorHandler((err: FastifyError, req, reply) => {
        if (err.validation) return message(reply, 400, 'Not found', 'This link is not valid.')
        if (err instanceof HttpError) {
          if (err.headers) reply.headers(err.headers)
          return message(reply, err.statusCode, 'Not possible', err.message)
        }
        const status = err.statusCode ?? 500
        if (status < 500)
          return message(reply, status, 'Not possible', 'The request was not valid.')
        if (isDatabaseUnreachable(err)) {
          deps.outage.noted(err)
          reply.header('retry-after', String(RETRY_AFTER_SECONDS))
          return message(
            reply,
            503,
            'Unavailable',
            'The service is unavailable. Try again shortly.',
          )
        }
        req.log.error({ err }, 'unhandled error')
        return message(reply, 500, 'Something went wrong', `Try again. Request id ${req.id}.`)
      })

      const open = { console: true, signedOut: true }
      const signedIn = { console: true }

      // Assets: public (the sign-in page uses them), named by content, so cached for good.
      const asset = (path: string, type: string, body: string) =>
        c.get(path.replace('/console', ''), { config: open }, async (_req, reply) =>
          reply
            .type(type)
            .header('cache-control', 'public, max-age=31536000, immutable')
            .header('content-security-policy', "default-src 'none'")
            .header('x-content-type-options', 'nosniff')
            .send(body),
        )
      asset(assets.css, 'text/css; charset=utf-8', css)
      asset(assets.icon, 'image/svg+xml', icon)

      c.get<{ Querystring: { next?: string; notice?: 'signed-out' } }>(
        '/sign-in',
        {
          config: open,
          schema: {
            querystring: {
              type: 'object',
              properties: { next: { type: 'string' }, notice: { enum: ['signed-out'] } },
            },
          },
        },
        async (req, reply) => {
          const token = readCookie(req, COOKIE)
          if (token && (await sessionValid(db, token, policy)))
            return reply.redirect(consolePath(req.query.next), 303)
          return sendHtml(
            reply,
            200,
            signInPage({
              brand,
              assets,
              next: req.query.next,
              ...(req.query.notice && { notice: 'You are signed out.' }),
            }),
          )
        },
      )

      c.post<{ Body: { key: string; next?: string } }>(
        '/sign-in',
        { config: open, schema: { body: form(['key', 'next'], ['key']) } },
        async (req, reply) => {
          // Wrong keys here count against the same per-address allowance as on the API.
          guard.check(req)
          if (!safeEqual(req.body.key, config.adminApiKey)) {
            await guard.failed(req)
            return sendHtml(
              reply,
              401,
              signInPage({
                brand,
                assets,
                next: req.body.next,
                error: 'That key is not valid.',
              }),
            )
          }
          const { token, maxAgeSeconds } = await openSession(db, policy)
          req.log.info('console: signed in')
          return reply
            .header('set-cookie', cookie(req, token, maxAgeSeconds))
            .redirect(consolePath(req.body.next), 303)
        },
      )

      c.post(
        '/sign-out',
        { config: signedIn, schema: { body: form(['csrf']) } },
        async (req, reply) => {
          await closeSession(db, sessionOf(req))
          return reply
            .header('set-cookie', cookie(req, '', 0))
            .redirect('/console/sign-in?notice=signed-out', 303)
        },
      )

      pageRoutes(c, { deps, render, message, csrf: (req) => csrfToken(sessionOf(req)) })

      // Anything else under /console: a page, not the API's JSON 404.
      c.get('/*', { config: open }, async (_req, reply) =>
        message(reply, 404, 'Not found', 'There is no such page in the console.'),
      )
    },
    { prefix: '/console' },
  )
}
