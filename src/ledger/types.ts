import type { AccountKind, BalanceRule, TransferState } from '../db/schema.ts'

export interface Account {
  id: string
  assetId: string
  kind: AccountKind
  rule: BalanceRule
  debitsPosted: bigint
  creditsPosted: bigint
  debitsPending: bigint
  creditsPending: bigint
  /** How far debits may exceed credits (a credit line), or null for no such limit. */
  debitLimit: bigint | null
}

export interface Transfer {
  id: string
  debitAccountId: string
  creditAccountId: string
  assetId: string
  amount: bigint
  twoPhase: boolean
  state: TransferState
  postedAmount: bigint | null
  expiresAt: Date | null
  reference: string | null
  createdAt: Date
}

export type LedgerErrorCode =
  | 'invalid_amount'
  | 'same_account'
  | 'unknown_account'
  | 'asset_mismatch'
  | 'insufficient_balance'
  | 'exceeds_limit'
  | 'exists_with_different_fields'
  | 'unknown_transfer'
  | 'not_pending'
  | 'already_resolved'
  | 'pending_expired'

/** An expected ledger outcome, returned (not thrown) so callers map it to their own errors. */
export class LedgerError {
  constructor(
    readonly code: LedgerErrorCode,
    readonly message: string,
    readonly accountId?: string,
  ) {}
}

export const isLedgerError = (v: unknown): v is LedgerError => v instanceof LedgerError
