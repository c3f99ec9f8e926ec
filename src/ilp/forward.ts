import { createHash } from 'node:crypto'
import {
  Errors,
  type IlpFulfill,
  type IlpPrepare,
  type IlpReply,
  isFulfill,
  serializeIlpPrepare,
} from 'ilp-packet'
import type { Deps } from '../deps.ts'
import { assetAccountId } from '../ledger/accounts.ts'
import { createTransfer, postTransfer, voidTransfer } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import { type Peer, peerForDestination } from '../peers/service.ts'
import { afterPeerDebit } from '../webhooks/thresholds.ts'
import { convertPacketAmount } from './convert.ts'
import { sendPrepare } from './http-client.ts'

/** Taken off the expiry at each hop, so that a Fulfill can still reach the previous hop in time. */
const EXPIRY_MARGIN_MS = 1000
/** The longest a forwarded packet may hold the sender's money, whatever expiry it asked for. */
const MAX_HOLD_MS = 30_000

/**
 * A Prepare for someone else, from a peer: sent on to the peer with the longest matching route, in
 * that peer's asset, with an earlier expiry; a Fulfill is passed back only if it matches the
 * condition. The money is reserved from the sending peer to the next one while the packet is out
 * (through the settlement accounts when their assets differ), posted on a Fulfill, released on
 * anything else; a peer beyond its credit line gets T04 and nothing leaves.
 */
export async function forward(deps: Deps, prepare: IlpPrepare, from: Peer): Promise<IlpReply> {
  const r = await route(deps, prepare, from)
  const legs = await forwardingLegs(deps, prepare, from, r)
  if (legs.length === 0) return send(deps, r, prepare)
  const pendingUntil = reservationEnd(prepare.expiresAt)
  await reserve(deps, from, legs, pendingUntil)
  let reply: IlpReply
  try {
    reply = await send(deps, r, prepare)
  } catch (err) {
    await release(deps, legs)
    throw err
  }
  if (!isFulfill(reply)) {
    await release(deps, legs)
    return reply
  }
  // The next peer has been paid: the Fulfill goes back whatever becomes of the booking, or the
  // sending peer would never pay for what we now owe. A failed post is tried again until the
  // reservation would expire.
  const posted = await resolveLegs(deps, legs, true).then(
    () => true,
    (err) => {
      deps.logger.warn(
        { err, transfers: legs.map((l) => l.id) },
        'forwarded Fulfill not booked yet',
      )
      return false
    },
  )
  if (!posted) void postUntil(deps, legs, pendingUntil)
  return reply
}

/** Released by the ledger's expiry if this process dies before resolving them. */
const reservationEnd = (expiresAt: Date) => new Date(expiresAt.getTime() + 60_000)

/** How long before the reservation's end the last attempt to post it starts. */
const LAST_POST_MARGIN_MS = 5_000

/**
 * Posts a fulfilled packet's legs, attempt after attempt (100 ms apart, doubling up to 5 s), until
 * one commits or the reservation is about to expire; then the legs cannot be booked any more, and
 * the error says which, for the operator to book them by hand.
 */
async function postUntil(deps: Deps, legs: Leg[], pendingUntil: Date): Promise<void> {
  for (let wait = 100; ; wait = Math.min(wait * 2, 5_000)) {
    if (Date.now() + wait > pendingUntil.getTime() - LAST_POST_MARGIN_MS) break
    await new Promise((resolve) => setTimeout(resolve, wait))
    try {
      await resolveLegs(deps, legs, true)
      deps.logger.info({ transfers: legs.map((l) => l.id) }, 'forwarded Fulfill booked')
      return
    } catch (err) {
      deps.logger.warn(
        { err, transfers: legs.map((l) => l.id) },
        'forwarded Fulfill not booked yet',
      )
    }
  }
  deps.logger.error(
    { transfers: legs.map((l) => ({ ...l, amount: l.amount.toString() })) },
    'forwarded Fulfill never booked: its reservation expires; book these transfers by hand',
  )
}

/** Voids the legs of a packet that was not fulfilled; if that fails, their expiry releases them. */
async function release(deps: Deps, legs: Leg[]): Promise<void> {
  await resolveLegs(deps, legs, false).catch((err) =>
    deps.logger.warn(
      { err, transfers: legs.map((l) => l.id) },
      'forwarding reservation not voided',
    ),
  )
}

interface Leg {
  id: string
  debitAccountId: string
  creditAccountId: string
  amount: bigint
}

async function forwardingLegs(
  deps: Deps,
  prepare: IlpPrepare,
  from: Peer,
  r: Route,
): Promise<Leg[]> {
  const received = BigInt(prepare.amount)
  const sent = BigInt(r.outgoing.amount)
  if (received === 0n || sent === 0n) return []
  const id = `fwd:${from.id}:${createHash('sha256').update(serializeIlpPrepare(prepare)).digest('base64url')}`
  if (from.assetId === r.to.assetId) {
    return [
      {
        id,
        debitAccountId: from.ledgerAccountId,
        creditAccountId: r.to.ledgerAccountId,
        amount: received,
      },
    ]
  }
  return [
    {
      id,
      debitAccountId: from.ledgerAccountId,
      creditAccountId: await assetAccountId(deps.db, from.assetId, 'settlement'),
      amount: received,
    },
    {
      id: `${id}:out`,
      debitAccountId: await assetAccountId(deps.db, r.to.assetId, 'settlement'),
      creditAccountId: r.to.ledgerAccountId,
      amount: sent,
    },
  ]
}

async function reserve(deps: Deps, from: Peer, legs: Leg[], pendingUntil: Date): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    for (const leg of legs) {
      const t = await createTransfer(trx, { ...leg, pendingUntil, reference: 'ilp:forward' })
      if (isLedgerError(t)) {
        if (t.code === 'exceeds_limit')
          throw new Errors.InsufficientLiquidityError('peer has exceeded its credit line')
        throw new Error(`forwarding reservation refused: ${t.message}`)
      }
      if (t.replayed) throw new Errors.ConnectorBusyError('packet is already being forwarded')
    }
    await afterPeerDebit(trx, from, legs[0]!.amount)
  })
}

async function resolveLegs(deps: Deps, legs: Leg[], fulfilled: boolean): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    for (const leg of legs) {
      const t = fulfilled ? await postTransfer(trx, leg.id) : await voidTransfer(trx, leg.id)
      if (isLedgerError(t))
        throw new Error(`forwarding ${fulfilled ? 'post' : 'void'} refused: ${t.message}`)
    }
  })
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
  if (isFulfill(reply) && !fulfills(reply, prepare)) {
    throw new Errors.WrongConditionError('fulfillment does not match the condition')
  }
  return reply
}

/** Whether a Fulfill's fulfillment is the preimage of the Prepare's condition: anything else is no Fulfill. */
export const fulfills = (reply: IlpFulfill, prepare: IlpPrepare) =>
  createHash('sha256').update(reply.fulfillment).digest().equals(prepare.executionCondition)
