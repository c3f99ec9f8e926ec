import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Deps } from '../deps.ts'
import { notFound } from '../lib/errors.ts'
import { listKeys } from './keys.ts'
import { type WalletAddress, walletAddressDocument } from './service.ts'
import { WELL_KNOWN_PAY } from './urls.ts'

const JWKS_SUFFIX = '/jwks.json'

/**
 * Public wallet-address documents and their JWKS on the Open Payments listener. Registered as a
 * wildcard, which the router tries after every resource-server route.
 */
export function walletAddressRoutes(app: FastifyInstance, deps: Deps): void {
  const { config, db } = deps
  const cacheControl = `public, max-age=${config.walletAddressCacheSeconds}`

  // The server's own client identity: a document and key set from configuration, not the database.
  const identity = deps.identity
  const serverPath = config.openPayments.serverIdentity.path

  const find = async (path: string): Promise<WalletAddress> => {
    const wa = await deps.walletAddresses.byPath(path)
    if (wa?.status !== 'active') throw notFound('wallet address not found')
    return wa
  }

  const document = async (path: string, reply: FastifyReply) => {
    if (path === serverPath) {
      return reply.header('cache-control', cacheControl).send({
        id: identity.walletAddressUrl,
        publicName: identity.name,
        // ISO 4217 "no currency": this address identifies the server and holds no money.
        assetCode: 'XXX',
        assetScale: 0,
        authServer: config.authServerUrl,
        resourceServer: config.openPaymentsUrl,
      })
    }
    const wa = await find(path)
    return reply.header('cache-control', cacheControl).send(walletAddressDocument(config, wa))
  }

  const jwks = async (path: string, reply: FastifyReply) => {
    if (path === serverPath)
      return reply.header('cache-control', cacheControl).send({ keys: [identity.jwk] })
    const wa = await find(path)
    const keys = await listKeys(db, wa.id, { includeRevoked: false })
    return reply.header('cache-control', cacheControl).send({ keys: keys.map((k) => k.jwk) })
  }

  app.get(WELL_KNOWN_PAY, (_req, reply) => document('', reply))
  app.get(`${WELL_KNOWN_PAY}${JWKS_SUFFIX}`, (_req, reply) => jwks('', reply))
  app.get('/*', (req, reply) => {
    const path = req.url.split('?', 1)[0]!
    if (!path.endsWith(JWKS_SUFFIX)) return document(path, reply)
    // The path-less address's keys live under /.well-known/pay only.
    const owner = path.slice(0, -JWKS_SUFFIX.length)
    if (owner === '') throw notFound('wallet address not found')
    return jwks(owner, reply)
  })
}
