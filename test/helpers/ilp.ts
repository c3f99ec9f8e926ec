import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import type { IncomingPaymentWithPaymentMethods } from '@interledger/open-payments'
import { deserializeIlpReply, type IlpReply, serializeIlpPrepare } from 'ilp-packet'
import {
  Counter,
  closeConnection,
  type PaymentProgress,
  pay,
  type ResolvedPayment,
  startQuote,
} from 'interledger-pay-alpha.9'
import { getAccount } from '../../src/ledger/accounts.ts'
import { getPeer } from '../../src/peers/service.ts'
import { type ClientIdentity, createClientIdentity, grantToken } from './clients.ts'
import { createWalletAddress, startTestServer, type TestServer } from './server.ts'

export interface TestPeer {
  id: string
  /** The bearer token the peer presents to us. */
  token: string
  ledgerAccountId: string
}

/** A peer (and its asset, if new) added through the admin API, with a fresh incoming token. */
export async function addPeer(
  server: TestServer,
  opts: {
    name: string
    assetCode?: string
    assetScale?: number
    maxPacketAmount?: bigint
    creditLimit?: bigint
    routes?: string[]
    httpEndpoint?: string
    outgoingToken?: string
  },
): Promise<TestPeer> {
  const token = randomBytes(24).toString('base64url')
  const [assetCode, assetScale] = [opts.assetCode ?? 'USD', opts.assetScale ?? 2]
  const asset = await server.admin('POST', '/assets', { code: assetCode, scale: assetScale })
  if (asset.status !== 201 && asset.status !== 409) throw new Error(`create asset: ${asset.status}`)
  const res = await server.admin('POST', '/peers', {
    name: opts.name,
    assetCode,
    assetScale,
    ilpAddress: `test.${opts.name}`,
    ...(opts.routes && { routes: opts.routes }),
    httpEndpoint: opts.httpEndpoint ?? 'http://127.0.0.1:9/ilp',
    outgoingToken: opts.outgoingToken ?? randomBytes(24).toString('base64url'),
    incomingTokens: [token],
    ...(opts.maxPacketAmount !== undefined && {
      maxPacketAmount: opts.maxPacketAmount.toString(),
    }),
    ...(opts.creditLimit !== undefined && { creditLimit: opts.creditLimit.toString() }),
  })
  if (res.status !== 201) throw new Error(`add peer: ${res.status} ${JSON.stringify(res.body)}`)
  const peer = (await getPeer(server.database.db, { id: res.body.id }))!
  return { id: peer.id, token, ledgerAccountId: peer.ledgerAccountId }
}

/** Debits minus credits: what the peer owes us for packets it sent. */
export async function peerDebt(server: TestServer, peer: TestPeer): Promise<bigint> {
  const account = (await getAccount(server.database.db, peer.ledgerAccountId))!
  return account.debitsPosted - account.creditsPosted
}

export interface IlpResponse {
  status: number
  contentType: string | null
  body: Buffer
}

/** POSTs bytes to an ILP-over-HTTP endpoint as a peer would. */
export async function postIlp(
  url: string,
  body: Buffer,
  opts: { token?: string; contentType?: string } = {},
): Promise<IlpResponse> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': opts.contentType ?? 'application/octet-stream',
      ...(opts.token !== undefined && { authorization: `Bearer ${opts.token}` }),
    },
    body,
  })
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    body: Buffer.from(await res.arrayBuffer()),
  }
}

/** The reply to a Prepare posted by `peer`; fails on anything but a 200. */
export async function sendPacket(url: string, peer: TestPeer, prepare: Buffer): Promise<IlpReply> {
  const res = await postIlp(url, prepare, { token: peer.token })
  if (res.status !== 200) throw new Error(`ILP over HTTP: ${res.status} ${res.body}`)
  return deserializeIlpReply(res.body)
}

/** A pay plugin that sends every packet to `url` as `peer`, keeping a copy of each Prepare. */
export function peerPlugin(url: string, peer: TestPeer) {
  const sent: Buffer[] = []
  return {
    sent,
    sendData: async (prepare: Buffer) => {
      sent.push(prepare)
      const res = await postIlp(url, prepare, { token: peer.token })
      if (res.status !== 200) throw new Error(`ILP over HTTP: ${res.status}`)
      return res.body
    },
  }
}

/** The `ResolvedPayment` built straight from an incoming payment's `ilp` method (ilp.md 3.1). */
export function destinationOf(ip: IncomingPaymentWithPaymentMethods): ResolvedPayment {
  const method = ip.methods[0]!
  return {
    destinationAddress: method.ilpAddress as ResolvedPayment['destinationAddress'],
    sharedSecret: Buffer.from(method.sharedSecret, 'base64url'),
    destinationAsset: { code: ip.receivedAmount.assetCode, scale: ip.receivedAmount.assetScale },
    requestCounter: Counter.from(0)!,
  }
}

/**
 * Quotes and pays an incoming payment over STREAM with `@interledger/pay`, as another ASE's sender
 * would: fixed delivery of `deliver`, a rate probe first, then the payment on a fresh connection.
 */
export async function payOverStream(opts: {
  plugin: { sendData(prepare: Buffer): Promise<Buffer> }
  incomingPayment: IncomingPaymentWithPaymentMethods
  sourceAsset: { code: string; scale: number }
  deliver: bigint
  prices?: Record<string, number>
  slippage?: number
}): Promise<PaymentProgress> {
  const destination = destinationOf(opts.incomingPayment)
  const quote = await startQuote({
    plugin: opts.plugin,
    destination,
    sourceAsset: opts.sourceAsset,
    amountToDeliver: opts.deliver,
    slippage: opts.slippage ?? 0,
    ...(opts.prices && { prices: opts.prices }),
  })
  await closeConnection(opts.plugin, destination)
  const fresh = { ...destination, requestCounter: Counter.from(0)! }
  const progress = await pay({ plugin: opts.plugin, destination: fresh, quote })
  await closeConnection(opts.plugin, fresh)
  return progress
}

const hmac = (key: Buffer, message: string | Buffer) =>
  createHmac('sha256', key).update(message).digest()

/**
 * A fulfillable STREAM Prepare for an `ilp` payment method, built by hand (RFC 29): version 1, ILP
 * Prepare, sequence 1, minimum destination amount 0, no frames, encrypted and conditioned with keys
 * derived from the shared secret as a STREAM sender derives them.
 */
export function streamPrepare(opts: {
  ilpAddress: string
  sharedSecret: string
  amount: bigint
  expiresAt?: Date
}): Buffer {
  const secret = Buffer.from(opts.sharedSecret, 'base64url')
  // OER: u8 version, u8 type, then VarUInts (length byte + value): sequence, amount, frame count.
  const plaintext = Buffer.from([1, 12, 1, 1, 1, 0, 1, 0])
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', hmac(secret, 'ilp_stream_encryption'), iv)
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  const data = Buffer.concat([iv, cipher.getAuthTag(), ciphertext])
  const fulfillment = hmac(hmac(secret, 'ilp_stream_fulfillment'), data)
  return serializeIlpPrepare({
    amount: opts.amount.toString(),
    expiresAt: opts.expiresAt ?? new Date(Date.now() + 30_000),
    executionCondition: createHash('sha256').update(fulfillment).digest(),
    destination: opts.ilpAddress,
    data,
  })
}

/**
 * The receiving ASE of the ILP tests: a server at `test.ase-b`, a client app, and Bob with a token
 * of the app's to create and read his incoming payments.
 */
export async function startReceivingAse(env: Record<string, string> = {}): Promise<{
  server: TestServer
  app: ClientIdentity
  bob: { id: string; url: string }
  token: string
}> {
  const server = await startTestServer({ ILP_ADDRESS: 'test.ase-b', ...env })
  const app = await createClientIdentity(server, { path: '/app' })
  const bob = await createWalletAddress(server, { path: '/bob' })
  const token = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
  ])
  return { server, app, bob, token }
}
