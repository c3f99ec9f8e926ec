import assert from 'node:assert/strict'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
} from './clients.ts'
import { eventually, type TestServer } from './server.ts'

/** One ASE of a pair: its server, a wallet app signed in with the official client, a quote token. */
export interface Ase {
  server: TestServer
  app: ClientIdentity
  quoteToken: string
}

export type Amount = { value: string; assetCode: string; assetScale: number }

/** A wallet app at `server` (official client) with a quote grant. */
export async function walletApp(server: TestServer): Promise<Ase> {
  const app = await createClientIdentity(server, { path: '/wallet-app', publicName: 'Wallet App' })
  return {
    server,
    app,
    quoteToken: await grantToken(server, app, [{ type: 'quote', actions: ['create'] }]),
  }
}

/** Makes `to` a peer of `from` over ILP-over-HTTP, settling in the given asset (USD by default). */
export async function peer(
  from: TestServer,
  to: TestServer,
  name: string,
  tokens: { out: string; in: string },
  asset: { code: string; scale: number } = { code: 'USD', scale: 2 },
): Promise<string> {
  const created = await from.admin('POST', '/assets', asset)
  assert.ok(created.status === 201 || created.status === 409, `asset: ${created.status}`)
  const res = await from.admin('POST', '/peers', {
    name,
    assetCode: asset.code,
    assetScale: asset.scale,
    ilpAddress: to.config.openPayments.ilpAddress,
    httpEndpoint: to.ilpUrl,
    outgoingToken: tokens.out,
    incomingTokens: [tokens.in],
    creditLimit: '100000000',
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body.id as string
}

/** The peer accounts' position, summed: positive when we owe peers, negative when they owe us. */
export async function peerPosition(server: TestServer): Promise<bigint> {
  const rows = await server.database.db
    .selectFrom('ledger_accounts')
    .select(['credits_posted', 'debits_posted'])
    .where('kind', '=', 'peer')
    .execute()
  return rows.reduce((sum, r) => sum + r.credits_posted - r.debits_posted, 0n)
}

/** An incoming payment at the receiver's ASE, created by that ASE's wallet app. */
export async function incomingPayment(at: Ase, walletAddress: string, incomingAmount?: Amount) {
  const token = await grantToken(at.server, at.app, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: walletAddress },
  ])
  const ip = await at.app.client.incomingPayment.create(
    { url: at.server.openPaymentsUrl, accessToken: token },
    { walletAddress, ...(incomingAmount && { incomingAmount }) },
  )
  return { ip, read: () => at.app.client.incomingPayment.get({ url: ip.id, accessToken: token }) }
}

/** Quote and pay from `sender` at `from` with the official client; waits for the payment to end. */
export async function pay(
  from: Ase,
  sender: string,
  receiver: string,
  amount: { debitAmount?: Amount; receiveAmount?: Amount } = {},
  grant?: string,
  /** How long the payment may take to end. */
  waitMs = 20_000,
) {
  const quote = await from.app.client.quote.create(
    { url: from.server.openPaymentsUrl, accessToken: from.quoteToken },
    { walletAddress: sender, receiver, method: 'ilp', ...amount } as never,
  )
  const token = grant ?? (await outgoingPaymentToken(from.server, from.app, sender))
  const created = await from.app.client.outgoingPayment.create(
    { url: from.server.openPaymentsUrl, accessToken: token },
    { walletAddress: sender, quoteId: quote.id },
  )
  const done = await eventually(async () => {
    // The state first: a read of the payment after it says "ended" shows the final amounts.
    const row = await from.server.database.db
      .selectFrom('outgoing_payments')
      .select('state')
      .where('id', '=', created.id.split('/').at(-1)!)
      .executeTakeFirstOrThrow()
    if (row.state === 'sending') return undefined
    return from.app.client.outgoingPayment.get({ url: created.id, accessToken: token })
  }, waitMs)
  return { quote, payment: done }
}
