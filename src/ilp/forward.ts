import { createHash } from 'node:crypto'
import { Errors, type IlpPrepare, type IlpReply, isFulfill } from 'ilp-packet'
import type { Deps } from '../deps.ts'
import { type Peer, peerForDestination } from '../peers/service.ts'
import { convertPacketAmount } from './convert.ts'
import { sendPrepare } from './http-client.ts'

/** Taken off the expiry at each hop, so that a Fulfill can still reach the previous hop in time. */
const EXPIRY_MARGIN_MS = 1000
/** The longest a forwarded packet may hold the sender's money, whatever expiry it asked for. */
const MAX_HOLD_MS = 30_000

/**
 * A Prepare for someone else: sent on to the peer with the longest matching route, in that peer's
 * asset, with an earlier expiry; a Fulfill is passed back only if it matches the condition.
 *
 * Nothing is booked yet: neither the sending peer's debit nor the receiving peer's credit is
 * recorded, so forwarded money stays off the ledger until two-phase accounting (reserve on the
 * Prepare, post on the Fulfill, void on the Reject) is added here.
 */
export async function forward(
  deps: Deps,
  prepare: IlpPrepare,
  from: Pick<Peer, 'id' | 'assetCode' | 'assetScale'>,
): Promise<IlpReply> {
  return send(deps, await route(deps, prepare, from), prepare)
}

export interface Route {
  to: Peer
  /** The packet as the next peer gets it: its asset, an earlier expiry. */
  outgoing: IlpPrepare
}

/** Where a packet goes next and as what; throws the ILP error that refuses it. No network I/O. */
export async function route(
  deps: Deps,
  prepare: IlpPrepare,
  from: Pick<Peer, 'id' | 'assetCode' | 'assetScale'>,
): Promise<Route> {
  const to = await peerForDestination(deps.db, prepare.destination)
  // Never back to where it came from: two peers routing a prefix to each other would bounce it.
  if (!to || to.id === from.id) {
    throw new Errors.UnreachableError(`no route to ${prepare.destination}`)
  }
  const now = Date.now()
  const expiresAt = Math.min(prepare.expiresAt.getTime() - EXPIRY_MARGIN_MS, now + MAX_HOLD_MS)
  if (expiresAt <= now) throw new Errors.InsufficientTimeoutError('packet expires too soon')
  const amount = await convertPacketAmount(deps.rates, BigInt(prepare.amount), from, to)
  return { to, outgoing: { ...prepare, amount: amount.toString(), expiresAt: new Date(expiresAt) } }
}

/** Sends a routed packet; a Fulfill passes back only if it matches the original condition. */
export async function send(deps: Deps, r: Route, prepare: IlpPrepare): Promise<IlpReply> {
  const reply = await sendPrepare(r.to, r.outgoing, deps.config.openPayments.ilpAddress)
  if (isFulfill(reply) && !sha256(reply.fulfillment).equals(prepare.executionCondition)) {
    throw new Errors.WrongConditionError('fulfillment does not match the condition')
  }
  return reply
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest()
