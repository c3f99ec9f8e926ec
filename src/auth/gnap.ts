import type { FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import { HttpError } from '../lib/errors.ts'
import { requesterOf } from '../rate-limit/keys.ts'
import type { ClientDirectory } from '../signatures/clients.ts'
import { targetUri, verifySignature } from '../signatures/verify.ts'
import type { GrantClient } from './grants.ts'

/** A GNAP error (RFC 9635 §3.6 codes, as the Open Payments auth-server spec lists them). */
export const gnapError = (status: number, code: string, description: string) =>
  new HttpError(status, code, description)

/** The token of an `Authorization: GNAP <token>` header, or undefined. */
export function gnapToken(req: FastifyRequest): string | undefined {
  const m = /^GNAP ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '')
  return m?.[1]
}

/**
 * Verifies the request's HTTP message signature with the client's key: from its wallet address's
 * JWKS (a fetch is charged to the request's address), or its directed-identity JWK. Keys that
 * cannot be found are 400 `invalid_client` (clients read that as "key revoked"); a bad signature is
 * 401 `invalid_client`. A verified client is then counted against its rate limit.
 */
export async function verifyClient(
  config: Config,
  clients: ClientDirectory,
  req: FastifyRequest,
  client: GrantClient,
): Promise<void> {
  const result = await verifySignature(
    {
      method: req.method,
      targetUri: targetUri(config.authServerUrl, req.url),
      headers: req.headers,
      rawBody: req.rawBody,
    },
    async (keyId) =>
      'walletAddress' in client
        ? clients.key(client.walletAddress, keyId, requesterOf(req))
        : keyId === client.jwk.kid
          ? client.jwk
          : 'unknown_key',
    { maxAgeSeconds: config.signatureMaxAgeSeconds },
  )
  if (result.ok) {
    req.limitClient('walletAddress' in client ? client.walletAddress : `jwk:${client.jwk.x}`)
    return
  }
  if (result.reason === 'unknown_key' || result.reason === 'keys_unavailable') {
    throw gnapError(400, 'invalid_client', `could not determine client: ${result.message}`)
  }
  throw gnapError(401, 'invalid_client', `invalid signature: ${result.message}`)
}
