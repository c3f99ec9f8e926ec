import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Database } from './database.ts'

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations')

interface Migration {
  version: number
  name: string
  sql: string
}

export function listMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: readFileSync(join(MIGRATIONS_DIR, file), 'utf8'),
    }))
}

/**
 * Applies pending migrations in one transaction behind an advisory lock, so several processes may
 * start at once and running twice is a no-op. Returns the versions applied now.
 */
export async function migrate(database: Database): Promise<number[]> {
  return database.scriptTransaction(async ({ exec, query }) => {
    // Scope the lock to the schema so that test schemas migrate in parallel.
    await query(`SELECT pg_advisory_xact_lock(hashtext('migrations:' || current_schema()))`)
    await exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    const done = new Set(
      (await query<{ version: number }>('SELECT version FROM schema_migrations')).map(
        (r) => r.version,
      ),
    )
    const applied: number[] = []
    for (const m of listMigrations()) {
      if (done.has(m.version)) continue
      await exec(m.sql)
      await query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        m.version,
        m.name,
      ])
      applied.push(m.version)
    }
    return applied
  })
}
