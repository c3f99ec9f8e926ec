import type { Config } from '../config.ts'
import { incomingPaymentJson } from '../incoming-payments/serialize.ts'
import type { IncomingPayment } from '../incoming-payments/service.ts'
import { outgoingPaymentJson, type Sender } from '../outgoing-payments/serialize.ts'
import type { OutgoingPayment } from '../outgoing-payments/service.ts'
import { toAmount } from '../resource-server/amounts.ts'
import { type WalletAddress, walletAddressDocument } from '../wallet-addresses/service.ts'
import type { EventType } from './events.ts'

export interface StoredEvent {
  id: string
  type: string
  createdAt: Date
  /** The facts as stored (see `factsJson`). */
  data: unknown
}

export interface Payload {
  id: string
  type: EventType
  timestamp: string
  data: Record<string, unknown>
}

// biome-ignore lint/suspicious/noExplicitAny: facts are JSON written by factsJson from typed events
type Facts = Record<string, any>

/**
 * The body of an event as receivers get it: `{ id, type, timestamp, data }`, where data is the
 * resource in its Open Payments shape (the resource server's serialisers) plus operator fields.
 * Rendered from the stored facts whenever it is sent, so every attempt sends the same bytes.
 */
export function renderPayload(config: Config, event: StoredEvent): Payload {
  const facts = event.data as Facts
  const type = event.type as EventType
  return {
    id: event.id,
    type,
    timestamp: event.createdAt.toISOString(),
    data: renderData(config, type, facts),
  }
}

function renderData(config: Config, type: EventType, f: Facts): Record<string, unknown> {
  switch (type) {
    case 'incoming_payment.created':
    case 'incoming_payment.completed':
    case 'incoming_payment.expired':
    case 'incoming_payment.cancelled': {
      const ip = incomingPayment(f.incomingPayment)
      return {
        ...incomingPaymentJson(config, ip),
        walletAddressId: ip.walletAddressId,
        ...(ip.cancelReason && { cancelReason: ip.cancelReason }),
      }
    }
    case 'outgoing_payment.created':
    case 'outgoing_payment.completed':
    case 'outgoing_payment.failed':
    case 'outgoing_payment.cancelled':
    case 'outgoing_payment.attempt_failed': {
      const p = outgoingPayment(f.outgoingPayment)
      const sender = f.sender as Sender
      const debitAsset = { code: sender.assetCode, scale: sender.assetScale }
      return {
        ...outgoingPaymentJson(config, p, sender),
        walletAddressId: p.walletAddressId,
        state: p.state,
        feeAmount: toAmount(p.feeAmount, debitAsset),
        ...(type === 'outgoing_payment.failed' && { failureReason: p.failure ?? 'unknown' }),
        ...(type === 'outgoing_payment.cancelled' && { cancelReason: p.failure ?? '' }),
        ...(type === 'outgoing_payment.attempt_failed' && {
          attempt: f.attempt as number,
          error: f.error as string,
          nextAttemptAt: f.nextAttemptAt as string,
        }),
      }
    }
    case 'wallet_address.balance_low': {
      const wa = f.walletAddress as WalletAddress
      const asset = { code: wa.assetCode, scale: wa.assetScale }
      return {
        ...walletAddressDocument(config, wa),
        walletAddressId: wa.id,
        balance: toAmount(BigInt(f.balance.balance), asset),
        reserved: toAmount(BigInt(f.balance.reserved), asset),
        available: toAmount(BigInt(f.balance.available), asset),
        threshold: toAmount(BigInt(f.threshold), asset),
        thresholdOf: f.thresholdOf as string,
      }
    }
    case 'peer.liquidity_low': {
      const asset = { code: f.peer.assetCode as string, scale: f.peer.assetScale as number }
      return {
        peerId: f.peer.id as string,
        name: f.peer.name as string,
        creditLimit: toAmount(BigInt(f.creditLimit), asset),
        owed: toAmount(BigInt(f.owed), asset),
        remaining: toAmount(BigInt(f.remaining), asset),
        threshold: toAmount(BigInt(f.threshold), asset),
      }
    }
  }
}

const date = (v: string | null) => (v === null ? null : new Date(v))

function incomingPayment(f: Facts): IncomingPayment {
  return {
    ...(f as IncomingPayment),
    incomingAmount: f.incomingAmount === null ? null : BigInt(f.incomingAmount),
    receivedAmount: BigInt(f.receivedAmount),
    completedAt: date(f.completedAt),
    expiresAt: new Date(f.expiresAt),
    createdAt: new Date(f.createdAt),
  }
}

function outgoingPayment(f: Facts): OutgoingPayment {
  return {
    ...(f as OutgoingPayment),
    debitAmount: BigInt(f.debitAmount),
    feeAmount: BigInt(f.feeAmount),
    receiveAmount: BigInt(f.receiveAmount),
    sentAmount: BigInt(f.sentAmount),
    createdAt: new Date(f.createdAt),
  }
}
