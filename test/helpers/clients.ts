import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createHeaders } from '@interledger/http-signature-utils'
import { type AuthenticatedClient, createAuthenticatedClient } from '@interledger/open-payments'
import { consentedOutgoingGrant } from '../../demo/consent.ts'
import {
  createWalletAddress,
  DEV_PASSWORD,
  type JsonResponse,
  request,
  type TestServer,
} from './server.ts'

export interface ClientIdentity {
  walletAddressUrl: string
  walletAddressId: string
  keyId: string
  privateKey: KeyObject
  /** The official Open Payments client, validating every response against the spec. */
  client: AuthenticatedClient
}

/** A wallet address on the test server with an Ed25519 key, and the official client using it. */
export async function createClientIdentity(
  server: TestServer,
  opts: { path: string; publicName?: string; keyId?: string },
): Promise<ClientIdentity> {
  const wa = await createWalletAddress(server, { path: opts.path, publicName: opts.publicName })
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const keyId = opts.keyId ?? `${opts.path.slice(1)}-key`
  const x = publicKey.export({ format: 'jwk' }).x!
  const added = await server.admin('POST', `/wallet-addresses/${wa.id}/keys`, {
    jwk: { kid: keyId, kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', x },
  })
  if (added.status !== 201) throw new Error(`add key: ${added.status}`)
  const client = await createAuthenticatedClient({
    walletAddressUrl: wa.url,
    privateKey,
    keyId,
    validateResponses: true,
    logLevel: 'silent',
  })
  return { walletAddressUrl: wa.url, walletAddressId: wa.id, keyId, privateKey, client }
}

/**
 * A raw request signed as the official client signs (http-signature-utils), for inputs the client
 * itself would refuse to send. `token` adds `Authorization: GNAP <token>`.
 */
export async function signedRequest(
  url: string,
  opts: {
    method?: string
    body?: unknown
    token?: string
    identity: { privateKey: KeyObject; keyId: string }
    tamper?: (headers: Record<string, string>) => void
  },
): Promise<JsonResponse> {
  // As the official client does: the signed @target-uri is the normalised URL.
  url = new URL(url).href
  const method = opts.method ?? 'POST'
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body)
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    ...(opts.token && { authorization: `GNAP ${opts.token}` }),
  }
  const signed = await createHeaders({
    request: { method, url, headers, ...(body !== undefined && { body }) },
    privateKey: opts.identity.privateKey,
    keyId: opts.identity.keyId,
  })
  const all: Record<string, string> = { ...headers }
  for (const [k, v] of Object.entries(signed)) if (v !== undefined) all[k.toLowerCase()] = v
  opts.tamper?.(all)
  return request(url, { method, headers: all, body })
}

/** A non-interactive grant through the official client; returns its access token value. */
export async function grantToken(
  server: TestServer,
  identity: ClientIdentity,
  access: NonNullable<
    Parameters<AuthenticatedClient['grant']['request']>[1]['access_token']
  >['access'],
): Promise<string> {
  const grant = await identity.client.grant.request(
    { url: server.authUrl },
    { access_token: { access } },
  )
  if (!('access_token' in grant) || !grant.access_token) throw new Error('expected a token')
  return grant.access_token.value
}

/**
 * An interactive outgoing-payment grant for `walletAddress`, consented through the development
 * sign-in over HTTP, continued with the official client; returns the access token value.
 */
export async function outgoingPaymentToken(
  server: TestServer,
  identity: ClientIdentity,
  walletAddress: string,
  limits?: Record<string, unknown>,
): Promise<string> {
  const grant = await consentedOutgoingGrant(identity.client, {
    authServer: server.authUrl,
    walletAddress,
    password: DEV_PASSWORD,
    actions: ['create', 'read', 'list'],
    ...(limits && { limits }),
  })
  return grant.accessToken
}
