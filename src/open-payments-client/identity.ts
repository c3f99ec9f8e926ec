import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import type { Config } from '../config.ts'
import type { Jwk } from '../wallet-addresses/keys.ts'
import { toJwk } from '../wallet-addresses/keys.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

export interface ServerIdentity {
  /** The wallet address URL the server signs its own Open Payments requests as. */
  walletAddressUrl: string
  name: string
  privateKey: KeyObject
  jwk: Jwk
}

/**
 * The server's own client identity for calling other ASEs (reading their incoming payments): a
 * wallet address of this server, served from configuration (`SERVER_WALLET_ADDRESS_PATH`), and an
 * Ed25519 key from `SERVER_PRIVATE_KEY`.
 */
export function serverIdentity(config: Config): ServerIdentity {
  const { path, name, seed } = config.openPayments.serverIdentity
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  })
  const x = createPublicKey(privateKey).export({ format: 'jwk' }).x!
  const kid = `server-${createHash('sha256').update(x).digest('base64url').slice(0, 12)}`
  return { walletAddressUrl: walletAddressUrl(config, path), name, privateKey, jwk: toJwk(kid, x) }
}
