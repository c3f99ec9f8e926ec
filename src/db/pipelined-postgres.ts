import type { Socket } from 'node:net'
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  PostgresDialect,
  type QueryResult,
  sql,
  type TransactionSettings,
} from 'kysely'
import type pg from 'pg'
import { prepareValue } from './described-once.ts'
import { isShared, type SharedConnections } from './shared-connections.ts'

/**
 * Marks a BEGIN or COMMIT sent in the same write as a statement: `countRoundTrips` (database.ts)
 * counts its transaction but not a round trip.
 */
export const PIPELINED = '/* pipelined */'

const LAST_MARK = '/* last statement */'
/**
 * Written anywhere in a statement's `sql` text inside a transaction, sends COMMIT right behind the
 * statement, in the same round trip. Nothing may run in the transaction after it (that throws),
 * and the caller must not fail after it: the transaction commits if the statement succeeds.
 * COMMIT is still reported where Kysely reports it (a failed commit fails the transaction's
 * `execute`); outside a transaction the mark does nothing.
 */
export const LAST_STATEMENT = sql.raw(LAST_MARK)

const AHEAD = Symbol('sent ahead')
type Ahead = CompiledQuery & { [AHEAD]?: CompiledQuery }

/**
 * `first`, with `next` sent in the same write right behind it, inside a transaction: PostgreSQL
 * runs `next` as soon as `first` is done (after any lock `first` waits for, on a snapshot of its
 * own), without waiting for the round trip back to us. The caller then executes `next` as usual
 * and gets its result, whatever it decided meanwhile; a transaction that ends without executing it
 * still had it run. A statement executed between the two runs after `next`. `next`'s text must end
 * with `PIPELINED`, which tells `countRoundTrips` (database.ts) that it shares `first`'s round trip.
 * Outside a transaction, or on PGlite, `next` simply runs when it is executed.
 */
export function withNext<R>(first: CompiledQuery<R>, next: CompiledQuery): CompiledQuery<R> {
  if (!next.sql.endsWith(PIPELINED))
    throw new Error('a statement sent ahead must end with PIPELINED')
  return Object.assign({ ...first }, { [AHEAD]: next })
}

/**
 * Kysely's PostgreSQL dialect with BEGIN sent together with a transaction's first statement, and
 * COMMIT with a statement marked as its last (`LAST_STATEMENT`): one or two round trips fewer per
 * transaction, which matters most where PostgreSQL is across a network. The pool's clients run in
 * `pg`'s pipeline mode, which sends a query without waiting for the one before it; Kysely still
 * runs one statement at a time per connection, so only BEGIN and COMMIT ever share a round trip.
 * Statements marked `SHARED` outside a transaction take no connection of the pool: they run on the
 * shared connections (shared-connections.ts), with other requests' statements.
 *
 * A BEGIN that fails fails its transaction's first statement too (it may run outside the
 * transaction, alone, only if BEGIN failed while the connection still worked: PostgreSQL refuses
 * BEGIN on an open connection for no other reason than a transaction already open, and then only
 * warns). A transaction that runs no statement sends nothing.
 */
export class PipelinedPostgresDialect extends PostgresDialect {
  readonly #pool: pg.Pool
  readonly #shared: SharedConnections | undefined

  /** `shared`: where statements marked `SHARED` run outside a transaction (none: on `pool`). */
  constructor(pool: pg.Pool, shared?: SharedConnections) {
    super({ pool })
    this.#pool = pool
    this.#shared = shared
  }

  override createDriver(): Driver {
    return new PipelinedDriver(this.#pool, this.#shared)
  }
}

class PipelinedDriver implements Driver {
  readonly #connections = new WeakMap<pg.PoolClient, PipelinedConnection>()

  constructor(
    readonly pool: pg.Pool,
    readonly shared: SharedConnections | undefined,
  ) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<LazyConnection> {
    return new LazyConnection(this)
  }

  /** A connection of the pool, for as long as a `LazyConnection` holds it. */
  async hold(): Promise<PipelinedConnection> {
    const client = await this.pool.connect()
    let connection = this.#connections.get(client)
    if (!connection) {
      connection = new PipelinedConnection(client)
      this.#connections.set(client, connection)
    }
    return connection
  }

  async beginTransaction(c: LazyConnection, settings: TransactionSettings): Promise<void> {
    const mode = [
      settings.isolationLevel && `isolation level ${settings.isolationLevel}`,
      settings.accessMode,
    ].filter(Boolean)
    ;(await c.held()).begin(`BEGIN ${mode.join(' ')} ${PIPELINED}`)
  }

  async commitTransaction(c: LazyConnection): Promise<void> {
    await (await c.held()).end('COMMIT')
  }

  async rollbackTransaction(c: LazyConnection): Promise<void> {
    await (await c.held()).end('ROLLBACK')
  }

  async releaseConnection(c: LazyConnection): Promise<void> {
    c.release()
  }

  async destroy(): Promise<void> {
    await this.shared?.close()
    await this.pool.end()
  }
}

/**
 * What Kysely takes for a connection: a statement marked `SHARED` outside a transaction runs on the
 * shared connections without taking one from the pool; anything else (a transaction's BEGIN, any
 * other statement) takes a connection of the pool, held until Kysely releases this one.
 */
class LazyConnection implements DatabaseConnection {
  #held: Promise<PipelinedConnection> | undefined

  constructor(readonly driver: PipelinedDriver) {}

  held(): Promise<PipelinedConnection> {
    this.#held ??= this.driver.hold()
    return this.#held
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const { shared } = this.driver
    if (this.#held === undefined && shared && isShared(query.sql)) {
      return toResult(await shared.query(query.sql, [...query.parameters]))
    }
    return (await this.held()).executeQuery(query)
  }

  release(): void {
    const held = this.#held
    this.#held = undefined
    // A connection not obtained was not taken.
    held?.then((c) => c.client.release()).catch(() => {})
  }

  // biome-ignore lint/correctness/useYield: streaming is not used; Kysely's interface requires it
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported')
  }
}

const WRITES = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

/** A connection of the pool, with BEGIN and COMMIT sent with statements. */
class PipelinedConnection {
  /** The BEGIN not sent yet: it goes with the transaction's first statement. */
  #begin: string | undefined
  /** Whether this transaction's BEGIN was sent. */
  #begun = false
  /** The COMMIT sent with a `LAST_STATEMENT`, awaited by Kysely's commit (or its rollback). */
  #committing: Promise<unknown> | undefined
  /** Statements sent ahead (`withNext`), by the query Kysely will execute. */
  readonly #ahead = new Map<CompiledQuery, Promise<pg.QueryResult>>()

  constructor(readonly client: pg.PoolClient) {}

  begin(text: string): void {
    this.#begin = text
    this.#begun = false
  }

  async end(text: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    // Sent ahead and never asked for: they ran, and COMMIT or ROLLBACK goes behind them. One that
    // failed aborted the transaction, and a COMMIT would quietly roll it back: it fails instead.
    const ahead = [...this.#ahead.values()]
    this.#ahead.clear()
    if (text === 'COMMIT') for (const sent of ahead) await sent
    this.#begin = undefined
    const committing = this.#committing
    this.#committing = undefined
    if (!this.#begun) return
    this.#begun = false
    // Sent already: a failed last statement made it a rollback, which is what a rollback wants.
    if (committing) await (text === 'COMMIT' ? committing : committing.catch(() => {}))
    else await this.client.query(text)
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const sent = this.#ahead.get(query)
    if (sent) {
      this.#ahead.delete(query)
      return toResult(await sent)
    }
    if (this.#committing) throw new Error('a statement after its transaction’s last statement')
    const inTransaction = this.#begun || this.#begin !== undefined
    const last = inTransaction ? query.sql.includes(LAST_MARK) : false
    const next = inTransaction ? (query as Ahead)[AHEAD] : undefined
    if (last && next) throw new Error('a last statement with a statement sent behind it')
    if (this.#begin === undefined && !last && !next) return toResult(await this.send(query))
    // A value that `pg` cannot serialise would fail the statement before anything of it is sent,
    // but the COMMIT behind it would still go out and commit the statements before it: serialised
    // here, such a value fails the statement before anything is written.
    if (last) query = { ...query, parameters: query.parameters.map(prepareValue) }
    // Corked, they go in one write: PostgreSQL finds each statement behind the one before it
    // without a wait, and a statement that fails makes the COMMIT behind it a rollback.
    const { stream } = (this.client as unknown as { connection: { stream: Socket } }).connection
    stream.cork()
    let begun: Promise<unknown> | undefined
    let result: Promise<pg.QueryResult>
    try {
      if (this.#begin !== undefined) {
        begun = this.client.query(this.#begin)
        this.#begin = undefined
        this.#begun = true
      }
      result = this.send(query)
      if (next) {
        const ahead = this.send(next)
        ahead.catch(() => {}) // awaited when executed; a failure there is that statement's own
        this.#ahead.set(next, ahead)
      }
      if (last) {
        this.#committing = this.client.query(`COMMIT ${PIPELINED}`)
        this.#committing.catch(() => {}) // awaited by end()
      }
    } finally {
      stream.uncork()
    }
    const [b, r] = await Promise.allSettled([begun, result])
    // A failed BEGIN fails the statement, whose own error (if it has one) says more.
    if (b.status === 'rejected' && r.status === 'fulfilled') throw b.reason
    if (r.status === 'rejected') throw r.reason
    return toResult(r.value)
  }

  send(query: CompiledQuery): Promise<pg.QueryResult> {
    return this.client.query(query.sql, [...query.parameters])
  }
}

function toResult<R>({ command, rowCount, rows }: pg.QueryResult): QueryResult<R> {
  return {
    numAffectedRows: WRITES.has(command) ? BigInt(rowCount ?? 0) : undefined,
    rows: (rows ?? []) as R[],
  }
}
