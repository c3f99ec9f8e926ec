import type { IncomingPayment } from '../incoming-payments/service.ts'
import type { Sender } from '../outgoing-payments/serialize.ts'
import type { OutgoingPayment } from '../outgoing-payments/service.ts'
import type { WalletAddress } from '../wallet-addresses/service.ts'

export const EVENT_TYPES = [
  'incoming_payment.created',
  'incoming_payment.completed',
  'incoming_payment.expired',
  'incoming_payment.cancelled',
  'outgoing_payment.created',
  'outgoing_payment.completed',
  'outgoing_payment.failed',
  'outgoing_payment.cancelled',
  'outgoing_payment.attempt_failed',
  'wallet_address.balance_low',
  'peer.liquidity_low',
] as const

export type EventType = (typeof EVENT_TYPES)[number]

export type IncomingPaymentEventType = Extract<EventType, `incoming_payment.${string}`>

/** A state change as the service that makes it describes it; stored as the event's facts. */
export type NewEvent =
  | { type: IncomingPaymentEventType; incomingPayment: IncomingPayment }
  | {
      type:
        | 'outgoing_payment.created'
        | 'outgoing_payment.completed'
        | 'outgoing_payment.failed'
        | 'outgoing_payment.cancelled'
      outgoingPayment: OutgoingPayment
      sender: Sender
    }
  | {
      type: 'outgoing_payment.attempt_failed'
      outgoingPayment: OutgoingPayment
      sender: Sender
      attempt: number
      error: string
      nextAttemptAt: Date
    }
  | {
      type: 'wallet_address.balance_low'
      walletAddress: WalletAddress
      balance: { balance: bigint; reserved: bigint; available: bigint }
      threshold: bigint
      /** Whether the wallet address's own threshold or its asset's was crossed. */
      thresholdOf: 'wallet_address' | 'asset'
    }
  | {
      type: 'peer.liquidity_low'
      peer: { id: string; name: string; assetCode: string; assetScale: number }
      creditLimit: bigint
      /** What the peer owes us now: money it sent (or is sending) beyond what we sent it. */
      owed: bigint
      remaining: bigint
      threshold: bigint
    }

/**
 * The resource whose events an endpoint receives in order. Events of different resources (a
 * payment and the incoming payment it pays) have no order between them.
 */
export function resourceOf(e: NewEvent): string {
  switch (e.type) {
    case 'incoming_payment.created':
    case 'incoming_payment.completed':
    case 'incoming_payment.expired':
    case 'incoming_payment.cancelled':
      return `incoming_payment:${e.incomingPayment.id}`
    case 'outgoing_payment.created':
    case 'outgoing_payment.completed':
    case 'outgoing_payment.failed':
    case 'outgoing_payment.cancelled':
    case 'outgoing_payment.attempt_failed':
      return `outgoing_payment:${e.outgoingPayment.id}`
    case 'wallet_address.balance_low':
      return `wallet_address:${e.walletAddress.id}`
    case 'peer.liquidity_low':
      return `peer:${e.peer.id}`
  }
}

/** The facts as stored: bigints become decimal strings, dates ISO strings. */
export const factsJson = (e: NewEvent): string =>
  JSON.stringify(e, (_key, v) => (typeof v === 'bigint' ? v.toString() : v))
