import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Deps } from '../deps.ts'
import { componentSchema, loadSpec, type Schema } from '../http/openapi-specs.ts'
import type { HttpError } from '../lib/errors.ts'
import { hashToken, safeEqual } from '../lib/secrets.ts'
import { requesterOf } from '../rate-limit/keys.ts'
import type { Jwk } from '../wallet-addresses/keys.ts'
import { findActiveByUrl, type WalletAddress } from '../wallet-addresses/service.ts'
import { type AccessItem, limitsError, needsInteraction, normaliseAccessItem } from './access.ts'
import { gnapError, gnapToken, verifyClient } from './gnap.ts'
import {
  type AccessToken,
  continueToken,
  createGrant,
  findGrant,
  findToken,
  type Grant,
  type GrantClient,
  issueOnInteractRef,
  issueToken,
  revokeGrant,
  revokeToken,
  subjectProven,
  tokenMatches,
  updateGrant,
} from './grants.ts'
import { tokenGrants } from './token-grants.ts'

interface GrantRequest {
  client: string | { walletAddress: string } | { jwk: Jwk }
  access_token?: { access: AccessItem[] }
  interact?: { start: string[]; finish?: { method: 'redirect'; uri: string; nonce: string } }
  subject?: { sub_ids: { id: string; format: 'uri' }[] }
}

/**
 * The grant request schema from the official spec. Its two branches (with `access_token`, with
 * `subject` and `interact`) are checked in the route, with clearer errors than a failed `anyOf`.
 */
async function grantRequestSchema(): Promise<Schema> {
  const spec = await loadSpec('auth-server')
  const access = componentSchema(spec, 'access') as { items: Schema }
  // Unknown fields in access items are tolerated, as the official validator does; only the known
  // fields are kept (normaliseAccessItem), so nothing unknown is stored or echoed.
  const { unevaluatedProperties: _, ...item } = access.items
  return {
    type: 'object',
    required: ['client'],
    properties: {
      client: componentSchema(spec, 'client'),
      access_token: {
        type: 'object',
        required: ['access'],
        properties: { access: { ...access, items: item } },
      },
      interact: componentSchema(spec, 'interact-request'),
      subject: componentSchema(spec, 'subject'),
    },
  }
}

/** The GNAP endpoints at the auth origin: grant request, continuation, token management. */
export async function gnapRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const { config, db, clients } = deps
  const auth = config.auth
  const base = config.authServerUrl

  const continueJson = (g: Grant, wait?: number) => ({
    access_token: { value: continueToken(auth.secret, g) },
    uri: `${base}/continue/${g.continueId}`,
    ...(wait !== undefined && { wait }),
  })
  /** A token's answer. Its grant is known to this process's resource server from now on. */
  const tokenJson = (value: string, t: AccessToken, g: Grant) => {
    tokenGrants.set(t.valueHash, { id: g.id, access: g.access, client: g.client })
    return {
      value,
      manage: `${base}/token/${t.manageId}`,
      expires_in: Math.max(0, Math.round((t.expiresAt.getTime() - Date.now()) / 1000)),
      access: g.access,
    }
  }

  app.post<{ Body: GrantRequest }>(
    '/',
    { schema: { body: await grantRequestSchema() } },
    async (req) => {
      const body = req.body
      if (!body.access_token && !body.subject) {
        throw gnapError(400, 'invalid_request', 'a grant request needs access_token or subject')
      }
      const client: GrantClient =
        typeof body.client === 'string'
          ? { walletAddress: body.client }
          : 'walletAddress' in body.client
            ? { walletAddress: body.client.walletAddress }
            : { jwk: body.client.jwk }
      await verifyClient(config, clients, req, client)

      const access = (body.access_token?.access ?? []).map(normaliseAccessItem)
      if (body.access_token && access.length === 0)
        throw gnapError(400, 'invalid_request', 'access must not be empty')
      const owners = new Map<string, WalletAddress>()
      // The schema allows exactly one sub_id, of format "uri".
      const subject = body.subject?.sub_ids[0]?.id
      if (subject !== undefined) {
        const wa = await findActiveByUrl(deps.walletAddresses, config, subject)
        if (!wa) {
          // Only the account holders of this server's wallet addresses can prove control here.
          throw gnapError(
            400,
            'invalid_request',
            URL.canParse(subject) && new URL(subject).origin !== config.openPaymentsUrl
              ? `subject ${subject} is not a wallet address of this server: ask the authorization server its wallet address names`
              : `unknown wallet address ${subject}`,
          )
        }
        owners.set(subject, wa)
      }
      for (const item of access) {
        const problem = limitsError(item.limits)
        if (problem) throw gnapError(400, 'invalid_request', problem)
        if (item.identifier === undefined) continue
        const wa =
          owners.get(item.identifier) ??
          (await findActiveByUrl(deps.walletAddresses, config, item.identifier))
        if (!wa)
          throw gnapError(400, 'invalid_request', `unknown wallet address ${item.identifier}`)
        owners.set(item.identifier, wa)
        const debit = item.limits?.debitAmount
        if (debit && (debit.assetCode !== wa.assetCode || debit.assetScale !== wa.assetScale)) {
          throw gnapError(
            400,
            'invalid_request',
            'limits.debitAmount must be in the wallet address asset',
          )
        }
      }
      const walletAddressId = owners.values().next().value?.id

      const interactive =
        subject !== undefined || access.some((item) => needsInteraction(item, auth.interaction))
      if (!interactive) {
        return db.transaction().execute(async (trx) => {
          const grant = await createGrant(trx, { client, access, walletAddressId })
          const { value, token } = await issueToken(trx, grant.id, auth.accessTokenExpirySeconds)
          return { access_token: tokenJson(value, token, grant), continue: continueJson(grant) }
        })
      }

      if ('jwk' in client) {
        throw gnapError(
          400,
          'invalid_client',
          'a directed-identity client (jwk) can only request non-interactive grants',
        )
      }
      if (!body.interact?.start.includes('redirect')) {
        throw gnapError(
          400,
          'invalid_request',
          subject !== undefined
            ? 'a subject request needs interaction: interact.start must include "redirect"'
            : 'this grant needs interaction: interact.start must include "redirect"',
        )
      }
      if (
        access.some(
          (item) => needsInteraction(item, auth.interaction) && item.identifier === undefined,
        )
      ) {
        throw gnapError(400, 'invalid_request', 'access identifier required')
      }
      if (owners.size > 1) {
        throw gnapError(
          400,
          'invalid_request',
          'an interactive grant must be for a single wallet address',
        )
      }
      if (!(await clients.walletAddress(client.walletAddress, requesterOf(req)))) {
        throw gnapError(
          400,
          'invalid_client',
          'could not determine client: its wallet address cannot be read',
        )
      }
      const finish = body.interact.finish
      // The spec's `uri` format lets through what no URL parser takes (a port above 65535): the
      // redirect after consent would fail then, not here.
      if (finish && !URL.canParse(finish.uri)) {
        throw gnapError(400, 'invalid_request', 'interact.finish.uri is not a URL')
      }
      const grant = await createGrant(db, {
        client,
        access,
        subject,
        walletAddressId,
        interaction: {
          expiresAt: new Date(Date.now() + auth.interactionExpirySeconds * 1000),
          finish: finish && { method: finish.method, uri: finish.uri, clientNonce: finish.nonce },
        },
      })
      const i = grant.interaction!
      return {
        interact: { redirect: `${base}/interact/${i.id}/${i.nonce}`, finish: i.nonce },
        continue: continueJson(grant, auth.waitSeconds),
      }
    },
  )

  /** The grant a continuation request names, after its token and signature check out. */
  const continuedGrant = async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const grant = await findGrant(db, { continueId: req.params.id })
    if (!grant) throw gnapError(404, 'invalid_request', 'unknown grant')
    const presented = gnapToken(req)
    if (!presented || !safeEqual(presented, continueToken(auth.secret, grant))) {
      throw gnapError(401, 'invalid_continuation', 'invalid continuation token')
    }
    await verifyClient(config, clients, req, grant.client)
    return grant
  }

  const idParams = {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', format: 'uuid' } },
  } as const

  app.post<{ Params: { id: string }; Body: { interact_ref?: string } | undefined }>(
    '/continue/:id',
    {
      schema: {
        params: idParams,
        // A bodiless poll arrives as null.
        body: {
          type: ['object', 'null'],
          properties: { interact_ref: { type: 'string', minLength: 1 } },
        },
      },
    },
    async (req) => {
      const grant = await continuedGrant(req)
      if (grant.finalization === 'revoked')
        throw gnapError(401, 'invalid_continuation', 'grant revoked')
      const ref = req.body?.interact_ref
      if (ref !== undefined) {
        // The usual case, an approved grant for access, in one statement; anything else (a wrong
        // or used reference, a subject to prove) is decided below, under the grant's lock.
        const issued =
          grant.subject === undefined
            ? await issueOnInteractRef(db, grant.id, ref, auth.accessTokenExpirySeconds)
            : undefined
        if (issued) {
          return {
            access_token: tokenJson(issued.value, issued.token, grant),
            continue: continueJson(grant),
          }
        }
        // interact_ref is single use: the first continuation that presents it clears it.
        return answer(
          await db.transaction().execute(async (trx) => {
            const g = (await findGrant(trx, { id: grant.id }, { forUpdate: true }))!
            const refHash = g.interaction?.refHash
            if (g.state !== 'approved' || !refHash || !safeEqual(refHash, hashToken(ref))) {
              throw gnapError(404, 'invalid_continuation', 'unknown or already used interact_ref')
            }
            return issueForApproved(trx, g)
          }),
        )
      }
      if (grant.interaction?.finish) {
        throw gnapError(
          401,
          'request_denied',
          'grant cannot be polled: continue with the interact_ref',
        )
      }
      return answer(
        await db.transaction().execute(async (trx) => {
          const g = (await findGrant(trx, { id: grant.id }, { forUpdate: true }))!
          if (g.finalization === 'rejected')
            throw gnapError(401, 'request_denied', 'grant rejected')
          if (g.finalization === 'issued')
            throw gnapError(401, 'request_denied', 'grant already issued')
          if (g.state === 'approved') return issueForApproved(trx, g)
          const since = (g.lastContinuedAt ?? g.createdAt).getTime()
          if (Date.now() < since + auth.waitSeconds * 1000) {
            throw gnapError(
              400,
              'too_fast',
              `continued too fast: wait ${auth.waitSeconds} seconds between requests`,
            )
          }
          await updateGrant(trx, g.id, { lastContinuedAt: new Date() })
          return { continue: continueJson(g, auth.waitSeconds) }
        }),
      )
    },
  )

  /**
   * Finalizes an approved grant: its token (when it asked for access) and its subject (when it asked
   * for one). A subject the signed-in account holder does not control ends the grant as rejected
   * with nothing issued; the refusal is returned, not thrown, so that it commits.
   */
  const issueForApproved = async (trx: typeof db, g: Grant) => {
    if (g.subject !== undefined && !subjectProven(g)) {
      await updateGrant(trx, g.id, {
        state: 'finalized',
        finalization: 'rejected',
        refHash: null,
        lastContinuedAt: new Date(),
      })
      return gnapError(
        401,
        'request_denied',
        `the account holder who signed in did not prove control of ${g.subject}`,
      )
    }
    await updateGrant(trx, g.id, {
      state: 'finalized',
      finalization: 'issued',
      refHash: null,
      lastContinuedAt: new Date(),
    })
    const issued =
      g.access.length > 0 ? await issueToken(trx, g.id, auth.accessTokenExpirySeconds) : undefined
    return {
      ...(issued && { access_token: tokenJson(issued.value, issued.token, g) }),
      ...(g.subject !== undefined && { subject: { sub_ids: [{ id: g.subject, format: 'uri' }] } }),
      continue: continueJson(g),
    }
  }

  /** The continuation's answer, or its refusal (committed before it is thrown). */
  const answer = <T>(result: T | HttpError): T => {
    if (result instanceof Error) throw result
    return result
  }

  app.delete<{ Params: { id: string } }>(
    '/continue/:id',
    { schema: { params: idParams } },
    async (req, reply) => {
      const grant = await continuedGrant(req)
      await db.transaction().execute((trx) => revokeGrant(trx, grant.id))
      return reply.code(204).send()
    },
  )

  /** The token a management request names, after the presented token and signature check out. */
  const managedToken = async (
    req: FastifyRequest<{ Params: { id: string } }>,
    onUnknown: () => Error,
  ) => {
    const token = await findToken(db, { manageId: req.params.id })
    const presented = gnapToken(req)
    if (!token || !presented || !tokenMatches(token, presented)) throw onUnknown()
    const grant = (await findGrant(db, { id: token.grantId }))!
    await verifyClient(config, clients, req, grant.client)
    return { token, grant }
  }

  app.post<{ Params: { id: string } }>(
    '/token/:id',
    { schema: { params: idParams } },
    async (req) => {
      const { token, grant } = await managedToken(req, () =>
        gnapError(404, 'invalid_rotation', 'unknown access token'),
      )
      // An expired token may be rotated (clients rotate after "Inactive Token"); a revoked one may not.
      return db.transaction().execute(async (trx) => {
        const current = (await findToken(trx, { manageId: token.manageId }, { forUpdate: true }))!
        const g = (await findGrant(trx, { id: grant.id }))!
        if (current.revokedAt || g.finalization !== 'issued') {
          throw gnapError(400, 'invalid_rotation', 'the access token or its grant is revoked')
        }
        await revokeToken(trx, current.id)
        const { value, token: fresh } = await issueToken(trx, g.id, auth.accessTokenExpirySeconds)
        return { access_token: tokenJson(value, fresh, g) }
      })
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/token/:id',
    { schema: { params: idParams } },
    async (req, reply: FastifyReply) => {
      const { token } = await managedToken(req, () =>
        gnapError(401, 'invalid_client', 'invalid access token'),
      )
      await revokeToken(db, token.id)
      return reply.code(204).send()
    },
  )
}
