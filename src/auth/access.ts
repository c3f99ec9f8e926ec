import type { AuthConfig } from '../config.ts'
import { isUint64String } from '../lib/amount.ts'
import { parseRepeatingInterval } from '../lib/interval.ts'

export type AccessType = 'incoming-payment' | 'outgoing-payment' | 'quote'

export interface Amount {
  value: string
  assetCode: string
  assetScale: number
}

export interface OutgoingLimits {
  receiver?: string
  interval?: string
  debitAmount?: Amount
  receiveAmount?: Amount
}

export interface AccessItem {
  type: AccessType
  actions: string[]
  identifier?: string
  limits?: OutgoingLimits
}

/** What a resource server asks introspection about: one type, one action, maybe a wallet address. */
export interface RequestedAccess {
  type: AccessType
  actions: string[]
  identifier?: string
}

const amount = (a: Amount): Amount => ({
  value: a.value,
  assetCode: a.assetCode,
  assetScale: a.assetScale,
})

/** Keeps only the fields the contract defines, so nothing unknown is stored or echoed back. */
export function normaliseAccessItem(item: AccessItem): AccessItem {
  const l = item.limits
  return {
    type: item.type,
    actions: [...item.actions],
    ...(item.identifier !== undefined && item.type !== 'quote' && { identifier: item.identifier }),
    ...(l &&
      item.type === 'outgoing-payment' && {
        limits: {
          ...(l.receiver !== undefined && { receiver: l.receiver }),
          ...(l.interval !== undefined && { interval: l.interval }),
          ...(l.debitAmount && { debitAmount: amount(l.debitAmount) }),
          ...(l.receiveAmount && { receiveAmount: amount(l.receiveAmount) }),
        },
      }),
  }
}

const isAmount = (a: unknown): a is Amount => {
  const v = a as Amount | null
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.value === 'string' &&
    isUint64String(v.value) &&
    typeof v.assetCode === 'string' &&
    v.assetCode.length > 0 &&
    Number.isInteger(v.assetScale) &&
    v.assetScale >= 0 &&
    v.assetScale <= 255
  )
}

/**
 * Checks what the spec's schema does not: its first `limits` branch admits any object, so the
 * amounts are checked here (uint64 value, asset), one at most, positive, and a parseable interval.
 */
export function limitsError(limits: OutgoingLimits | undefined): string | undefined {
  if (!limits) return undefined
  if (limits.debitAmount && limits.receiveAmount) return 'only one access amount allowed'
  for (const [name, a] of Object.entries({
    debitAmount: limits.debitAmount,
    receiveAmount: limits.receiveAmount,
  })) {
    if (a === undefined) continue
    if (!isAmount(a))
      return `limits.${name} must be an amount: {value: uint64 string, assetCode, assetScale 0-255}`
    if (BigInt(a.value) === 0n) return 'limit amounts must be greater than zero'
  }
  if (limits.interval !== undefined && !parseRepeatingInterval(limits.interval)) {
    return 'invalid interval: expected an ISO 8601 repeating interval such as R/2025-01-01T00:00:00Z/P1M'
  }
  return undefined
}

/** Outgoing payments always need the account holder's consent; the rest as configured. */
export function needsInteraction(item: AccessItem, policy: AuthConfig['interaction']): boolean {
  if (item.type === 'outgoing-payment') return true
  if (policy.listAll && item.actions.includes('list-all')) return true
  if (item.type === 'incoming-payment') return policy.incomingPayment
  return policy.quote
}

const IMPLIED_BY: Record<string, string> = { read: 'read-all', list: 'list-all' }

/**
 * The granted items that cover a requested access: same type, every requested action held (`read`
 * is covered by `read-all`, `list` by `list-all`), and identifiers equal where both name one.
 */
export function matchAccess(granted: AccessItem[], requested: RequestedAccess): AccessItem[] {
  return granted.filter(
    (g) =>
      g.type === requested.type &&
      requested.actions.every(
        (a) => g.actions.includes(a) || g.actions.includes(IMPLIED_BY[a] ?? ''),
      ) &&
      (g.identifier === undefined ||
        requested.identifier === undefined ||
        g.identifier === requested.identifier),
  )
}
