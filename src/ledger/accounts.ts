import { randomUUID } from 'node:crypto'
import type { Selectable } from 'kysely'
import type { Db } from '../db/database.ts'
import type { AccountKind, BalanceRule, LedgerAccountsTable } from '../db/schema.ts'
import type { Account } from './types.ts'

/** The balance rule each kind of account carries. */
const RULES: Record<AccountKind, BalanceRule> = {
  // The ASE's own side of an asset: goes "negative" as customers deposit, by design.
  settlement: 'none',
  // Customer money (liabilities): can never be spent below zero.
  wallet: 'debits_within_credits',
  incoming: 'debits_within_credits',
  // Clearing account for payments in flight: reservations are posted in and paid straight out.
  // Limit-free, as fees (limit-free.ts): checkBooks verifies that neither is ever overdrawn.
  outgoing: 'none',
  fees: 'none',
  // Peer accounts carry credit lines; limits are enforced by the ILP layer.
  peer: 'none',
}

export async function createAccount(
  db: Db,
  assetId: string,
  kind: AccountKind,
  opts: { debitLimit?: bigint } = {},
): Promise<Account> {
  const row = await db
    .insertInto('ledger_accounts')
    .values({
      id: randomUUID(),
      asset_id: assetId,
      kind,
      rule: RULES[kind],
      debit_limit: opts.debitLimit ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return toAccount(row)
}

/** Accounts are read with their limit-free deltas not yet folded (limit-free.ts). */
export async function getAccount(db: Db, id: string): Promise<Account | undefined> {
  const row = await db
    .selectFrom('ledger_account_totals')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst()
  return row && toAccount(row)
}

/** The asset's own account of a kind there is one of per asset (settlement, outgoing, fees). */
export async function getAssetAccount(
  db: Db,
  assetId: string,
  kind: 'settlement' | 'outgoing' | 'fees',
): Promise<Account> {
  const row = await db
    .selectFrom('ledger_account_totals')
    .selectAll()
    .where('asset_id', '=', assetId)
    .where('kind', '=', kind)
    .executeTakeFirstOrThrow()
  return toAccount(row)
}

export const getSettlementAccount = (db: Db, assetId: string) =>
  getAssetAccount(db, assetId, 'settlement')

// An asset's own accounts never change once created, so their ids can be remembered.
const assetAccountIds = new Map<string, string>()

/** The id of the asset's own account of a kind: read once, then from memory. */
export async function assetAccountId(
  db: Db,
  assetId: string,
  kind: 'settlement' | 'outgoing' | 'fees',
): Promise<string> {
  const key = `${assetId}:${kind}`
  let id = assetAccountIds.get(key)
  if (!id) {
    id = (await getAssetAccount(db, assetId, kind)).id
    assetAccountIds.set(key, id)
  }
  return id
}

export function toAccount(row: Selectable<LedgerAccountsTable>): Account {
  return {
    id: row.id,
    assetId: row.asset_id,
    kind: row.kind,
    rule: row.rule,
    debitsPosted: row.debits_posted,
    creditsPosted: row.credits_posted,
    debitsPending: row.debits_pending,
    creditsPending: row.credits_pending,
    debitLimit: row.debit_limit,
  }
}

/** What a credit-normal account (a wallet) may still spend: posted credits less all debits. */
export function available(a: Account): bigint {
  return a.creditsPosted - a.debitsPosted - a.debitsPending
}

/** Accounts in id order (stable for paging), after `afterId`, optionally of one asset or kind. */
export async function listAccounts(
  db: Db,
  filter: { assetId?: string; kind?: AccountKind; afterId?: string; limit: number },
): Promise<Account[]> {
  let q = db.selectFrom('ledger_account_totals').selectAll().orderBy('id').limit(filter.limit)
  if (filter.assetId !== undefined) q = q.where('asset_id', '=', filter.assetId)
  if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind)
  if (filter.afterId !== undefined) q = q.where('id', '>', filter.afterId)
  return (await q.execute()).map(toAccount)
}
