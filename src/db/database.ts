import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CompiledQuery, Kysely, sql } from 'kysely'
import pg from 'pg'
import type { PoolStats } from '../metrics/metrics.ts'
import { queryDescribedOnce } from './described-once.ts'
import { PGliteDialect } from './pglite-dialect.ts'
import { PIPELINED, PipelinedPostgresDialect } from './pipelined-postgres.ts'
import type { DB } from './schema.ts'
import { markShared, SHARED_CONNECTIONS, SharedConnections } from './shared-connections.ts'

export type Db = Kysely<DB>

/** Runs raw SQL scripts (migrations) in one transaction on a session of its own. */
export type ScriptTransaction = <T>(
  fn: (run: {
    exec(script: string): Promise<void>
    query<R>(text: string, params?: unknown[]): Promise<R[]>
  }) => Promise<T>,
) => Promise<T>

export interface Database {
  db: Db
  engine: 'postgres' | 'pglite'
  scriptTransaction: ScriptTransaction
  /** The connection pool's use now, for metrics. */
  poolStats(): PoolStats
  close(): Promise<void>
}

// int8 and numeric hold money and counters: both engines hand them to the code as bigint.
const BIGINT_OIDS = [20, 1700]
const toBigInt = (v: string) => BigInt(v)

export interface DatabaseOptions {
  databaseUrl: string | undefined
  schema: string
  poolSize: number
  /**
   * PostgreSQL connections besides the pool that requests' single statements marked `SHARED` share
   * (shared-connections.ts); 0: they run on the pool. Default `SHARED_CONNECTIONS`.
   */
  sharedConnections?: number
  dataDir: string
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts) : openPGlite(opts)
}

async function openPostgres(url: string, opts: DatabaseOptions): Promise<Database> {
  const counts = { statements: 0, transactions: 0 }
  const openPool = (max: number) => {
    const pool = new pg.Pool({
      connectionString: url,
      max,
      // A database that does not answer fails requests with 503 in seconds, not at the request timeout.
      connectionTimeoutMillis: 5_000,
      // A transaction's BEGIN goes with its first statement (pipelined-postgres.ts), and the shared
      // connections' statements go without waiting for each other (shared-connections.ts).
      pipeline: true,
      options: `-c search_path=${opts.schema}`,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          BIGINT_OIDS.includes(oid)
            ? toBigInt
            : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    })
    // A client losing its server connection must not crash the process: the pool reports idle ones,
    // and a checked-out one (between a transaction's statements) reports to a listener of its own.
    // Either way its next query fails as unreachable, and the pool discards it on release.
    pool.on('error', () => {})
    pool.on('connect', (client) => {
      client.on('error', () => {})
      countRoundTrips(client, counts)
      namePreparedStatements(client)
    })
    return pool
  }
  const pool = openPool(opts.poolSize)
  const sharedSize = opts.sharedConnections ?? SHARED_CONNECTIONS
  const shared =
    sharedSize > 0
      ? new SharedConnections(openPool(sharedSize), sharedSize, (text, values) =>
          pool.query(text, values),
        )
      : undefined
  // Processes starting at once on a new schema race here: IF NOT EXISTS does not cover that, and
  // the loser fails on the catalog's unique index although the schema then exists.
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`).catch((err) => {
    if (!['23505', '42P06'].includes((err as { code?: string }).code ?? '')) throw err
  })
  const db = new Kysely<DB>({ dialect: new PipelinedPostgresDialect(pool, shared) })
  return {
    db,
    engine: 'postgres',
    scriptTransaction: async (fn) => {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await fn({
          exec: async (script) => {
            await client.query(script)
          },
          query: async <R>(text: string, params: unknown[] = []) =>
            (await client.query(text, params)).rows as R[],
        })
        await client.query('COMMIT')
        return result
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
    },
    poolStats: () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      ...counts,
      ...(shared && { shared: shared.stats() }),
    }),
    close: () => db.destroy(),
  }
}

async function openPGlite(opts: DatabaseOptions): Promise<Database> {
  mkdirSync(opts.dataDir, { recursive: true })
  const unlock = lockDataDir(opts.dataDir)
  try {
    // Loaded only for the embedded engine: production (PostgreSQL) does not pay for its import.
    const { PGlite } = await import('@electric-sql/pglite')
    const pglite = new PGlite(join(opts.dataDir, 'pgdata'), {
      parsers: Object.fromEntries(BIGINT_OIDS.map((oid) => [oid, toBigInt])),
    })
    await pglite.waitReady
    await pglite.exec(
      `CREATE SCHEMA IF NOT EXISTS ${opts.schema}; SET search_path TO ${opts.schema}`,
    )
    const dialect = new PGliteDialect(pglite)
    const db = new Kysely<DB>({ dialect })
    return {
      db,
      engine: 'pglite',
      // One session: in use or idle.
      poolStats: () => ({
        total: 1,
        idle: 1 - dialect.usage.held,
        waiting: dialect.usage.waiting,
      }),
      scriptTransaction: (fn) =>
        pglite.transaction((tx) =>
          fn({
            exec: async (script) => {
              await tx.exec(script)
            },
            query: async <R>(text: string, params: unknown[] = []) =>
              (await tx.query<R>(text, params)).rows,
          }),
        ),
      close: async () => {
        await db.destroy()
        unlock()
      },
    }
  } catch (err) {
    unlock()
    throw err
  }
}

/**
 * Counts what the performance work is judged by: every statement sent is a round trip to the
 * server (but a pipelined BEGIN or COMMIT), and a transaction is an explicit BEGIN or a statement outside one (autocommit).
 */
function countRoundTrips(
  client: pg.PoolClient,
  counts: { statements: number; transactions: number },
): void {
  let inTransaction = false
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  client.query = ((...args: unknown[]) => {
    const first = args[0]
    const text = typeof first === 'string' ? first : (first as { text?: string } | null)?.text
    const verb = text?.trimStart().slice(0, 8).toLowerCase() ?? ''
    // A pipelined BEGIN or COMMIT shares its round trip with a statement.
    if (!text?.endsWith(PIPELINED)) counts.statements++
    if (verb.startsWith('begin')) {
      inTransaction = true
      counts.transactions++
    } else if (verb.startsWith('commit') || verb.startsWith('rollback')) {
      inTransaction = false
    } else if (!inTransaction) {
      counts.transactions++
    }
    return query(...args)
  }) as typeof client.query
}

/** The texts of `prepared` statements and their names, the same in every connection. */
const preparedNames = new Map<string, string>()
const PREPARE_MARK = '/* prepared */'
/** How many texts `PREPARE` may name: a text that varies by call must not grow without bound. */
export const MAX_MARKED_TEXTS = 100
let markedTexts = 0

/**
 * A statement of the request path with a fixed text, written once as SQL: no query builder runs per
 * call, and on PostgreSQL it goes as a named prepared statement, which each connection parses and
 * plans once instead of on every call. Parameters are `$1`, `$2`, … in `text`. It runs on any
 * handle (a transaction's too); PGlite runs it as a plain statement.
 */
export function prepared<R>(
  statement: string,
  opts: {
    /**
     * Outside a transaction it may run on a connection shared with other requests' statements
     * (`SHARED`, shared-connections.ts): a plain read, or an insert of a row with a new id.
     */
    shared?: boolean
  } = {},
): ((db: Db, params: unknown[]) => Promise<R[]>) & {
  /** The statement with these parameters, to execute later (`withNext`, pipelined-postgres.ts). */
  query: (params: unknown[]) => CompiledQuery<R>
} {
  const text = opts.shared ? markShared(statement) : statement
  if (!preparedNames.has(text)) preparedNames.set(text, `op_${preparedNames.size + 1}`)
  const query = (params: unknown[]) => CompiledQuery.raw(text, params) as CompiledQuery<R>
  return Object.assign(
    async (db: Db, params: unknown[]) => (await db.executeQuery<R>(query(params))).rows,
    { query },
  )
}

/**
 * Marks a statement that is built per call but whose text is the same on every call (a write that
 * `webhooks/outbox.ts` wraps in CTEs, say): written anywhere in its `sql` text, it has the whole
 * statement sent as a named prepared statement, as `prepared` ones are. At most MAX_MARKED_TEXTS
 * texts are named per process; past that, marked statements run unnamed.
 */
export const PREPARE = sql.raw(PREPARE_MARK)

function preparedName(text: string): string | undefined {
  const name = preparedNames.get(text)
  if (name !== undefined || markedTexts >= MAX_MARKED_TEXTS || !text.includes(PREPARE_MARK)) {
    return name
  }
  markedTexts++
  preparedNames.set(text, `op_${preparedNames.size + 1}`)
  return preparedNames.get(text)
}

/** Sends `prepared` and `PREPARE`d texts (as Kysely passes them: text, values) by name. */
function namePreparedStatements(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  client.query = ((...args: unknown[]) => {
    const [text, values] = args
    const name = args.length === 2 && typeof text === 'string' ? preparedName(text) : undefined
    return name === undefined
      ? query(...args)
      : queryDescribedOnce(query, { name, text: text as string, values: values as unknown[] })
  }) as typeof client.query
}

/**
 * PGlite is a single-process database: a second server on the same data directory would corrupt
 * it. The lock file holds the owner's pid; a lock left by a dead process is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'server.lock')
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const pid = Number(readFileSync(file, 'utf8'))
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new Error(
        `the embedded database in ${dataDir} is in use by process ${pid}; stop it or set DATABASE_URL to use PostgreSQL`,
      )
    }
    writeFileSync(file, String(process.pid))
  }
  return () => {
    if (existsSync(file) && Number(readFileSync(file, 'utf8')) === process.pid) rmSync(file)
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function ping(db: Db): Promise<void> {
  await sql`select 1`.execute(db)
}
