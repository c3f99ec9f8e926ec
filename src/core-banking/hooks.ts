import { sql } from 'kysely'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import { newSecret } from '../webhooks/signing.ts'

/** Where an asset's callouts go and the Standard Webhooks secret that signs them. */
export interface Hook {
  url: string
  secret: string
}

/** A per-asset hook as the admin API shows it (never its secret, except when generated). */
export interface AssetHook {
  assetId: string
  url: string
  createdAt: Date
  updatedAt: Date
}

/**
 * Sets an asset's hook. A given secret replaces the stored one; without one, a new hook gets a
 * generated secret (returned this once) and an existing hook keeps its own.
 */
export async function setAssetHook(
  db: Db,
  assetId: string,
  input: { url: string; secret?: string },
): Promise<{ hook: AssetHook; secret?: string }> {
  const generated = input.secret === undefined ? newSecret() : undefined
  const row = await db
    .insertInto('core_banking_hooks')
    .values({ asset_id: assetId, url: input.url, secret: input.secret ?? generated! })
    .onConflict((oc) =>
      oc.column('asset_id').doUpdateSet({
        url: input.url,
        updated_at: sql<Date>`now()`,
        ...(input.secret !== undefined && { secret: input.secret }),
      }),
    )
    // xmax = 0: the row was inserted, so the generated secret is the one stored.
    .returning([
      'asset_id',
      'url',
      'created_at',
      'updated_at',
      sql<boolean>`xmax = 0`.as('inserted'),
    ])
    .executeTakeFirstOrThrow()
  return {
    hook: toAssetHook(row),
    ...(row.inserted && generated !== undefined && { secret: generated }),
  }
}

export async function getAssetHook(db: Db, assetId: string): Promise<AssetHook | undefined> {
  const row = await db
    .selectFrom('core_banking_hooks')
    .select(['asset_id', 'url', 'created_at', 'updated_at'])
    .where('asset_id', '=', assetId)
    .executeTakeFirst()
  return row && toAssetHook(row)
}

export async function deleteAssetHook(db: Db, assetId: string): Promise<boolean> {
  const r = await db.deleteFrom('core_banking_hooks').where('asset_id', '=', assetId).execute()
  return (r[0]?.numDeletedRows ?? 0n) > 0n
}

const toAssetHook = (r: {
  asset_id: string
  url: string
  created_at: Date
  updated_at: Date
}): AssetHook => ({
  assetId: r.asset_id,
  url: r.url,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
})

/** How long a process trusts what it read of the per-asset hooks. */
const CACHE_MS = 5000

/**
 * Which hook an asset's payments use: its own, else the global one, else none (core banking is
 * off for it). Read from the database at most every few seconds per process, because the crediting
 * path asks for every packet; a change through this process's admin API applies at once, through
 * another process's within `CACHE_MS`.
 */
export interface HookDirectory {
  hookFor(assetId: string): Promise<Hook | undefined>
  /** Whether any asset has a hook (its own or the global one). */
  enabled(): Promise<boolean>
  /** Forgets what was read, after a change through the admin API. */
  invalidate(): void
}

export function createHookDirectory(db: Db, config: Config): HookDirectory {
  let cache: { at: number; hooks: Promise<Map<string, Hook>> } | undefined
  const load = async () => {
    const rows = await db
      .selectFrom('core_banking_hooks')
      .select(['asset_id', 'url', 'secret'])
      .execute()
    return new Map(rows.map((r) => [r.asset_id, { url: r.url, secret: r.secret }]))
  }
  const hooks = () => {
    if (!cache || Date.now() - cache.at > CACHE_MS) {
      const loading = load()
      cache = { at: Date.now(), hooks: loading }
      // A failed read is not kept: the next call reads again.
      loading.catch(() => {
        if (cache?.hooks === loading) cache = undefined
      })
    }
    return cache.hooks
  }
  return {
    hookFor: async (assetId) => (await hooks()).get(assetId) ?? config.coreBanking.global,
    enabled: async () => config.coreBanking.global !== undefined || (await hooks()).size > 0,
    invalidate: () => {
      cache = undefined
    },
  }
}
