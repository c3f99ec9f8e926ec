import { randomUUID } from 'node:crypto'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import { isUniqueViolation } from '../db/errors.ts'
import { createAccount } from '../ledger/accounts.ts'
import type { LocalWalletAddresses } from './local-cache.ts'
import { walletAddressPath, walletAddressUrl } from './urls.ts'

export interface WalletAddress {
  id: string
  path: string
  assetId: string
  assetCode: string
  assetScale: number
  publicName: string | null
  status: 'active' | 'inactive'
  ledgerAccountId: string
  createdAt: Date
  updatedAt: Date
}

export type WalletAddressError = 'invalid_path' | 'duplicate_path' | 'unknown_asset'

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._~-]*$/
/** First path segments the resource server owns; a wallet address there would be unreachable. */
const RESERVED_FIRST = new Set([
  'incoming-payments',
  'outgoing-payments',
  'quotes',
  'outgoing-payment-grant',
])
const RESERVED_LAST = new Set(['jwks.json', 'did.json'])

/** Normalises an operator-given path: `''` or `'/'` is the path-less address. */
export function normalisePath(input: string): string | undefined {
  if (input === '' || input === '/') return ''
  if (!input.startsWith('/') || input.length > 500) return undefined
  const segments = input.slice(1).split('/')
  if (!segments.every((s) => SEGMENT.test(s))) return undefined
  if (RESERVED_FIRST.has(segments[0]!) || RESERVED_LAST.has(segments.at(-1)!)) return undefined
  return input
}

export async function createWalletAddress(
  db: Db,
  input: { path: string; assetCode: string; assetScale: number; publicName?: string },
): Promise<WalletAddress | WalletAddressError> {
  const path = normalisePath(input.path)
  if (path === undefined) return 'invalid_path'
  try {
    return await db.transaction().execute(async (trx) => {
      const asset = await trx
        .selectFrom('assets')
        .select('id')
        .where('code', '=', input.assetCode)
        .where('scale', '=', input.assetScale)
        .executeTakeFirst()
      if (!asset) return 'unknown_asset' as const
      const account = await createAccount(trx, asset.id, 'wallet')
      const id = randomUUID()
      await trx
        .insertInto('wallet_addresses')
        .values({
          id,
          path,
          asset_id: asset.id,
          public_name: input.publicName ?? null,
          ledger_account_id: account.id,
        })
        .execute()
      return (await getWalletAddress(trx, { id }))!
    })
  } catch (err) {
    if (isUniqueViolation(err)) return 'duplicate_path'
    throw err
  }
}

export async function getWalletAddress(
  db: Db,
  by: { id: string } | { path: string },
): Promise<WalletAddress | undefined> {
  let q = selectWalletAddresses(db)
  q = 'id' in by ? q.where('w.id', '=', by.id) : q.where('w.path', '=', by.path)
  const row = await q.executeTakeFirst()
  return row && toWalletAddress(row)
}

export async function listWalletAddresses(
  db: Db,
  page: { first: number; after?: string },
): Promise<{ items: WalletAddress[]; hasNextPage: boolean }> {
  let q = selectWalletAddresses(db)
    .orderBy('w.created_at')
    .orderBy('w.id')
    .limit(page.first + 1)
  if (page.after) {
    const after = page.after
    q = q.where((eb) =>
      eb(
        eb.refTuple('w.created_at', 'w.id'),
        '>',
        eb
          .selectFrom('wallet_addresses')
          .select(['created_at', 'id'])
          .where('id', '=', after)
          .$asTuple('created_at', 'id'),
      ),
    )
  }
  const rows = await q.execute()
  return {
    items: rows.slice(0, page.first).map(toWalletAddress),
    hasNextPage: rows.length > page.first,
  }
}

export async function updateWalletAddress(
  db: Db,
  id: string,
  patch: { publicName?: string | null; status?: 'active' | 'inactive' },
): Promise<WalletAddress | undefined> {
  const updated = await db
    .updateTable('wallet_addresses')
    .set({
      ...(patch.publicName !== undefined && { public_name: patch.publicName }),
      ...(patch.status !== undefined && { status: patch.status }),
      updated_at: new Date(),
    })
    .where('id', '=', id)
    .executeTakeFirst()
  return updated.numUpdatedRows > 0n ? getWalletAddress(db, { id }) : undefined
}

function selectWalletAddresses(db: Db) {
  return db
    .selectFrom('wallet_addresses as w')
    .innerJoin('assets as a', 'a.id', 'w.asset_id')
    .select([
      'w.id',
      'w.path',
      'w.asset_id',
      'a.code as asset_code',
      'a.scale as asset_scale',
      'w.public_name',
      'w.status',
      'w.ledger_account_id',
      'w.created_at',
      'w.updated_at',
    ])
}

type Row = Awaited<ReturnType<ReturnType<typeof selectWalletAddresses>['executeTakeFirstOrThrow']>>

function toWalletAddress(r: Row): WalletAddress {
  return {
    id: r.id,
    path: r.path,
    assetId: r.asset_id,
    assetCode: r.asset_code,
    assetScale: r.asset_scale,
    publicName: r.public_name,
    status: r.status,
    ledgerAccountId: r.ledger_account_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

/**
 * The active wallet address served here at `url`, if any, from this process's cache of them
 * (local-cache.ts: a change made through another process shows within its bound).
 */
export async function findActiveByUrl(
  walletAddresses: LocalWalletAddresses,
  config: Config,
  url: string,
): Promise<WalletAddress | undefined> {
  const path = walletAddressPath(config, url)
  if (path === undefined) return undefined
  const wa = await walletAddresses.byPath(path)
  return wa?.status === 'active' ? wa : undefined
}

/** The public Open Payments document of a wallet address (`GET {walletAddress}`). */
export function walletAddressDocument(config: Config, wa: WalletAddress) {
  return {
    id: walletAddressUrl(config, wa.path),
    ...(wa.publicName !== null && { publicName: wa.publicName }),
    assetCode: wa.assetCode,
    assetScale: wa.assetScale,
    authServer: config.authServerUrl,
    resourceServer: config.openPaymentsUrl,
  }
}
