import { randomUUID } from 'node:crypto'
import type { Db } from '../db/database.ts'
import { available, getAccount } from '../ledger/accounts.ts'
import type { Account } from '../ledger/types.ts'
import type { Peer } from '../peers/service.ts'
import type { WalletAddress } from '../wallet-addresses/service.ts'
import type { NewEvent } from './events.ts'
import { recordEvent } from './outbox.ts'

/** What a low-balance threshold watches: a wallet address, every wallet address of an asset, or a peer. */
export type ThresholdTarget = { walletAddressId: string } | { assetId: string } | { peerId: string }

type Column = 'wallet_address_id' | 'asset_id' | 'peer_id'

const columnOf = (t: ThresholdTarget): [Column, string] =>
  'walletAddressId' in t
    ? ['wallet_address_id', t.walletAddressId]
    : 'assetId' in t
      ? ['asset_id', t.assetId]
      : ['peer_id', t.peerId]

/**
 * Thresholds are read on every debit they may concern, packets included, so each process keeps
 * them (and their absence) for a few seconds; a change made through another process is seen
 * within that time.
 */
const CACHE_MS = 5000
const cache = new Map<string, { threshold: bigint | null; until: number }>()

async function cachedThreshold(db: Db, column: Column, id: string): Promise<bigint | null> {
  const key = `${column}:${id}`
  const hit = cache.get(key)
  if (hit && hit.until > Date.now()) return hit.threshold
  const row = await db
    .selectFrom('low_balance_thresholds')
    .select('threshold')
    .where(column, '=', id)
    .executeTakeFirst()
  const threshold = row?.threshold ?? null
  cache.set(key, { threshold, until: Date.now() + CACHE_MS })
  return threshold
}

export async function getThreshold(db: Db, target: ThresholdTarget): Promise<bigint | undefined> {
  const [column, id] = columnOf(target)
  const row = await db
    .selectFrom('low_balance_thresholds')
    .select('threshold')
    .where(column, '=', id)
    .executeTakeFirst()
  return row?.threshold
}

/** Sets (or replaces) a threshold; setting the same value again changes nothing. */
export async function setThreshold(db: Db, target: ThresholdTarget, threshold: bigint) {
  const [column, id] = columnOf(target)
  await db
    .insertInto('low_balance_thresholds')
    .values({ id: randomUUID(), [column]: id, threshold })
    .onConflict((oc) => oc.column(column).doUpdateSet({ threshold, updated_at: new Date() }))
    .execute()
  cache.delete(`${column}:${id}`)
}

export async function deleteThreshold(db: Db, target: ThresholdTarget): Promise<boolean> {
  const [column, id] = columnOf(target)
  const done = await db
    .deleteFrom('low_balance_thresholds')
    .where(column, '=', id)
    .executeTakeFirst()
  cache.delete(`${column}:${id}`)
  return done.numDeletedRows > 0n
}

/**
 * After `amount` was debited from a wallet address (a withdrawal, or an outgoing payment's
 * reservation), inside that transaction: records `wallet_address.balance_low` when this debit took
 * the available balance from at or above the threshold (the wallet address's own, else its
 * asset's) to below it. Debits while already below record nothing. The debit locked the account
 * row, so concurrent debits see each other's balances.
 */
export const afterWalletDebit = (trx: Db, wa: WalletAddress, amount: bigint): Promise<void> =>
  recordIfAny(trx, balanceLowEvent(trx, wa, amount, accountNow(trx, wa.ledgerAccountId)))

/** Records the event, if there is one, in the caller's transaction. */
async function recordIfAny(trx: Db, event: Promise<NewEvent | undefined>): Promise<void> {
  const e = await event
  if (e) await recordEvent(trx, e)
}

/** The account as the transaction sees it now, read when asked for. */
const accountNow = (trx: Db, id: string) => async () => (await getAccount(trx, id))!

/**
 * `afterWalletDebit`'s event, for a caller that writes it itself, in the statement of its debit:
 * `accountAfter` gives the wallet address's account as the debit leaves it (read only when a
 * threshold applies).
 */
export async function balanceLowEvent(
  db: Db,
  wa: WalletAddress,
  amount: bigint,
  accountAfter: () => Account | Promise<Account>,
): Promise<NewEvent | undefined> {
  const own = await cachedThreshold(db, 'wallet_address_id', wa.id)
  const threshold = own ?? (await cachedThreshold(db, 'asset_id', wa.assetId))
  if (threshold === null) return undefined
  const account = await accountAfter()
  const after = available(account)
  if (after + amount < threshold || after >= threshold) return undefined
  return {
    type: 'wallet_address.balance_low',
    walletAddress: wa,
    balance: {
      balance: account.creditsPosted - account.debitsPosted,
      reserved: account.debitsPending,
      available: after,
    },
    threshold,
    thresholdOf: own === null ? 'asset' : 'wallet_address',
  }
}

/**
 * After a peer's account was debited by `amount` (money it sent us, received or forwarded), inside
 * that transaction: records `peer.liquidity_low` when this debit took the peer's remaining credit
 * line from at or above its threshold to below it.
 */
export const afterPeerDebit = (trx: Db, peer: Peer, amount: bigint): Promise<void> =>
  recordIfAny(trx, liquidityLowEvent(trx, peer, amount, accountNow(trx, peer.ledgerAccountId)))

/**
 * `afterPeerDebit`'s event, for a caller that writes it itself, in the statement of its debit:
 * `accountAfter` gives the peer's account as the debit leaves it (read only when a threshold
 * applies).
 */
export async function liquidityLowEvent(
  db: Db,
  peer: Peer,
  amount: bigint,
  accountAfter: () => Account | Promise<Account>,
): Promise<NewEvent | undefined> {
  const threshold = await cachedThreshold(db, 'peer_id', peer.id)
  if (threshold === null) return undefined
  const account = await accountAfter()
  if (account.debitLimit === null) return undefined
  const owed = account.debitsPosted + account.debitsPending - account.creditsPosted
  const remaining = account.debitLimit - owed
  if (remaining + amount < threshold || remaining >= threshold) return undefined
  return {
    type: 'peer.liquidity_low',
    peer: { id: peer.id, name: peer.name, assetCode: peer.assetCode, assetScale: peer.assetScale },
    creditLimit: account.debitLimit,
    owed,
    remaining,
    threshold,
  }
}
