import type { FastifyRequest } from 'fastify'
import type { AccessItem, AccessType } from '../auth/access.ts'
import { findTokenGrant, type GrantClient, isTokenActive, type TokenGrant } from '../auth/grants.ts'
import { introspectGrant } from '../auth/introspection.ts'
import { tokenGrants } from '../auth/token-grants.ts'
import type { Deps } from '../deps.ts'
import { HttpError } from '../lib/errors.ts'
import { hashToken } from '../lib/secrets.ts'
import { requesterOf } from '../rate-limit/keys.ts'
import { targetUri, verifySignature } from '../signatures/verify.ts'

/** What a request may do, once its token and signature check out. */
export interface Authorization {
  grantId: string
  client: GrantClient
  /** The client's identity as stored on the resources it creates. */
  clientId: string
  /** The granted access item that covers the request (its limits apply). */
  item: AccessItem
  /** `read-all` / `list-all`: every resource of the wallet address, not only the client's own. */
  all: boolean
  /**
   * The token's hash when its state was not read for this request (`AccessNeed.writeChecksToken`):
   * the route's write must check it (`tokenActiveSql`) and answer `inactiveToken` when it fails.
   */
  tokenUnchecked?: string
}

/** Access tokens' unchanging facts (token-grants.ts), for the routes whose writes check the token. */
export { tokenGrants }

/**
 * The grant of the request's token (`hash`) when this process knows it and the route's write may
 * check the token instead of a read. A replayed Idempotency-Key answers without the write: its
 * token is read, as for any route.
 */
const knownGrant = (req: FastifyRequest, hash: string) =>
  req.headers['idempotency-key'] === undefined ? tokenGrants.get(hash) : undefined

/**
 * Whether `authorize` takes the grant of the request's token (`hash`) from this process for a route whose
 * write checks the token (`AccessNeed.writeChecksToken`): an access function need not read the
 * token with the resource then, and leaves the resource to that write too.
 */
export const tokenKnown = (req: FastifyRequest, hash: string) => knownGrant(req, hash) !== undefined

/** 403 `Inactive Token`, which clients answer by rotating or asking anew (contract section 10). */
export const inactiveToken = (config: Deps['config']) =>
  new HttpError(403, '403', 'Inactive Token', undefined, {
    'www-authenticate': `GNAP as_uri=${config.authServerUrl}/`,
  })

export const clientIdOf = (c: GrantClient) =>
  'walletAddress' in c ? c.walletAddress : `jwk:${c.jwk.x}`

/** The access token of a `GNAP <token>` Authorization header; undefined when absent or malformed. */
export function gnapToken(req: FastifyRequest): string | undefined {
  return /^GNAP ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '')?.[1]
}

/**
 * The GNAP header parse, introspection and signature check every protected call goes through. The
 * token's grant is read here, unless the route's access function read it already with the
 * resource (`need.grant`). Token state is never cached: either way it is read for this request.
 */
export async function authorize(
  deps: Deps,
  req: FastifyRequest,
  need: AccessNeed,
): Promise<Authorization> {
  const { config, db, clients } = deps
  // Clients retry with a new token on these exact strings (see the contract, section 10).
  const fail = (status: number, description: string) =>
    new HttpError(status, String(status), description, undefined, {
      'www-authenticate': `GNAP as_uri=${config.authServerUrl}/`,
    })
  const token = gnapToken(req)
  if (token === undefined) throw fail(401, 'Missing or invalid authorization header value')
  let grant: TokenGrant | undefined
  let tokenUnchecked: string | undefined
  if (need.grant !== undefined) {
    grant = need.grant ?? undefined
    // Read with the resource: kept for the route's next request, whose write may check the token.
    if (grant && need.writeChecksToken) tokenGrants.set(hashToken(token), grant)
  } else {
    const hash = hashToken(token)
    const known = need.writeChecksToken ? knownGrant(req, hash) : undefined
    if (known) {
      grant = known
      tokenUnchecked = hash
    } else {
      grant = await findTokenGrant(db, token, new Date())
      if (grant) tokenGrants.set(hash, grant)
    }
  }
  const result = introspectGrant(grant, [
    {
      type: need.type,
      actions: [need.action],
      ...(need.identifier && { identifier: need.identifier }),
    },
  ])
  if (!result.active) throw inactiveToken(config)
  const item = result.access[0]
  if (!item) throw fail(403, 'Insufficient Grant')

  const client = result.client
  const signature = await verifySignature(
    {
      method: req.method,
      targetUri: targetUri(config.openPaymentsUrl, req.url),
      headers: req.headers,
      rawBody: req.rawBody,
    },
    (keyId) =>
      'walletAddress' in client
        ? clients.key(client.walletAddress, keyId, () => requesterOf(req))
        : Promise.resolve(keyId === client.jwk.kid ? client.jwk : 'unknown_key'),
    { maxAgeSeconds: config.signatureMaxAgeSeconds },
  )
  if (!signature.ok) throw fail(401, `Signature validation error: ${signature.message}`)

  return {
    grantId: result.grant,
    client,
    clientId: clientIdOf(client),
    item,
    all: result.access.some((a) => a.actions.includes(`${need.action}-all`)),
    ...(tokenUnchecked !== undefined && { tokenUnchecked }),
  }
}

/**
 * Runs a handler whose write may check the token (`Authorization.tokenUnchecked`). A refusal the
 * handler answers before that write (a bad amount, an unknown wallet address) would otherwise
 * reach a client whose token is no longer active: so the token's state is read then, and an
 * inactive token is answered 403 `Inactive Token`, as if the write had found it.
 */
async function checkingTokenOnRefusal<T>(
  deps: Deps,
  req: FastifyRequest,
  handle: () => Promise<T>,
): Promise<T> {
  try {
    return await handle()
  } catch (err) {
    const hash = req.auth?.tokenUnchecked
    // 403s are the token's own answers already; 5xx are not answers about the request.
    if (
      hash !== undefined &&
      err instanceof HttpError &&
      err.statusCode < 500 &&
      err.statusCode !== 403 &&
      !(await isTokenActive(deps.db, hash, new Date()))
    ) {
      tokenGrants.delete(hash)
      throw inactiveToken(deps.config)
    }
    throw err
  }
}

export interface AccessNeed {
  type: AccessType
  action: string
  identifier?: string
  /**
   * The grant of the request's token (`gnapToken`), when the access function read it in the
   * statement that loaded the resource (`tokenGrantSql`); null when that read found no active token.
   */
  grant?: TokenGrant | null
  /**
   * The route's write checks the token's state itself (`tokenActiveSql`): when the token's grant is
   * known to this process, it is not read for the request (`Authorization.tokenUnchecked`). A
   * `grant` read with the resource is then kept for the next request.
   */
  writeChecksToken?: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * What the route needs from the token, worked out from the validated request (loading the
     * resource if need be); undefined means the request is served without authorization.
     */
    access?: (req: FastifyRequest) => Promise<AccessNeed | undefined>
  }
  interface FastifyRequest {
    auth?: Authorization
  }
}

/**
 * Authorizes every route of `app` that declares `config.access`, in a preHandler, so that hooks
 * registered afterwards (idempotency keys) already know the client.
 */
export function protectRoutes(app: import('fastify').FastifyInstance, deps: Deps): void {
  app.addHook('preHandler', async (req) => {
    const need = await req.routeOptions.config.access?.(req)
    if (!need) return
    req.auth = await authorize(deps, req, need)
    req.limitClient(req.auth.clientId)
  })
  // Every protected route's refusals answer for the token's state when its write was to check it.
  app.addHook('onRoute', (route) => {
    if (!route.config?.access) return
    const handle = route.handler
    route.handler = function (req, reply) {
      return checkingTokenOnRefusal(deps, req, async () => handle.call(this, req, reply))
    }
  })
}
