import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { type Database, openDatabase } from '../../src/db/database.ts'
import { migrate } from '../../src/db/migrate.ts'

export const DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export interface TestDatabase extends Database {
  schema: string
  /** Closes the connections and drops the schema. */
  drop(): Promise<void>
}

/**
 * A migrated, empty schema of its own on the test PostgreSQL server; with `embedded`, a fresh
 * embedded database (PGlite) in a directory of its own instead.
 */
export async function createTestDatabase(
  opts: { poolSize?: number; sharedConnections?: number; embedded?: boolean } = {},
): Promise<TestDatabase> {
  if (opts.embedded) {
    const database = await openDatabase({
      databaseUrl: undefined,
      schema: 'public',
      poolSize: 1,
      dataDir: mkdtempSync(join(tmpdir(), 'op-pglite-')),
    })
    await migrate(database)
    return { ...database, schema: 'public', drop: () => database.close() }
  }
  const schema = `t_${randomBytes(6).toString('hex')}`
  const database = await openDatabase({
    databaseUrl: DATABASE_URL,
    schema,
    poolSize: opts.poolSize ?? 10,
    sharedConnections: opts.sharedConnections,
    dataDir: '/nonexistent',
  })
  await migrate(database)
  return {
    ...database,
    schema,
    drop: async () => {
      await database.close()
      await dropSchema(schema)
    },
  }
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL })
  await client.connect()
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  } finally {
    await client.end()
  }
}
