import type { Db } from '../db/database.ts'
import { available, getAccount, getSettlementAccount } from '../ledger/accounts.ts'
import { type CreatedTransfer, createTransfer } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import { afterWalletDebit } from '../webhooks/thresholds.ts'
import type { WalletAddress } from './service.ts'

export interface Balance {
  /** Posted credits less posted debits. */
  balance: bigint
  /** Held by pending transfers (outgoing payments in flight). */
  reserved: bigint
  /** What may be spent or withdrawn now. */
  available: bigint
}

export interface Movement {
  id: string
  kind: 'deposit' | 'withdrawal'
  amount: bigint
  createdAt: Date
  /** True when this id was seen before and the first result is returned. */
  replayed: boolean
}

export type MovementError = 'insufficient_balance' | 'id_reused_with_different_amount'

export async function getBalance(db: Db, wa: WalletAddress): Promise<Balance> {
  const account = (await getAccount(db, wa.ledgerAccountId))!
  return {
    balance: account.creditsPosted - account.debitsPosted,
    reserved: account.debitsPending,
    available: available(account),
  }
}

/**
 * Moves money between the ASE's settlement account for the asset and the wallet address. The
 * caller's id makes the call idempotent: the same id returns the first result and moves nothing.
 */
export async function moveFunds(
  db: Db,
  wa: WalletAddress,
  input: { kind: 'deposit' | 'withdrawal'; id: string; amount: bigint },
): Promise<Movement | MovementError> {
  return db.transaction().execute(async (trx) => {
    const transferId = `${input.kind}:${wa.id}:${input.id}`
    const settlement = await getSettlementAccount(trx, wa.assetId)
    const [debit, credit] =
      input.kind === 'deposit'
        ? [settlement.id, wa.ledgerAccountId]
        : [wa.ledgerAccountId, settlement.id]
    const result = await createTransfer(trx, {
      id: transferId,
      debitAccountId: debit,
      creditAccountId: credit,
      amount: input.amount,
      reference: input.kind,
    })
    if (isLedgerError(result)) {
      if (result.code === 'insufficient_balance') return 'insufficient_balance'
      if (result.code === 'exists_with_different_fields') return 'id_reused_with_different_amount'
      throw new Error(`unexpected ledger error: ${result.message}`)
    }
    if (input.kind === 'withdrawal' && !result.replayed)
      await afterWalletDebit(trx, wa, input.amount)
    return toMovement(input.kind, input.id, result)
  })
}

function toMovement(kind: Movement['kind'], id: string, t: CreatedTransfer): Movement {
  return { id, kind, amount: t.amount, createdAt: t.createdAt, replayed: t.replayed }
}
