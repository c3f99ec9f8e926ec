import type { Socket } from 'node:net'
import { sql } from 'kysely'
import type pg from 'pg'
import { sqlState } from './errors.ts'

const SHARED_MARK = '/* shared */'

/**
 * Written at the start of a statement's text, lets a statement run outside a transaction share a
 * connection with other requests' statements (`SharedConnections`). Only for a statement that
 * needs no session of its own and never waits for another transaction's lock: a plain read, or an
 * insert of a row with a new id. `prepared(text, { shared: true })` writes it.
 */
export const SHARED = sql.raw(SHARED_MARK)

export const isShared = (text: string) => text.startsWith(SHARED_MARK)
export const markShared = (text: string) => `${SHARED_MARK}${text}`

/**
 * How long a shared statement may wait for a lock before it leaves its connection: it is run
 * again on a connection of its own, where it waits as long as it must. A statement behind it on the
 * shared connection waits no longer than this for it, and a transaction that waits for a shared
 * statement while holding the lock that statement wants (a cycle PostgreSQL cannot see, as it goes
 * through this process) cannot hang.
 */
export const SHARED_LOCK_TIMEOUT_MS = 50

/**
 * The default of `DATABASE_SHARED_CONNECTIONS`: of 2, 4 and 8, creates (each statement waiting on
 * its connection for its commit's WAL flush) did best with 4; a GET gained as much with 2.
 */
export const SHARED_CONNECTIONS = 4

export interface SharedStats {
  inFlight: number
  lockTimeouts: number
}

interface Slot {
  client: Promise<pg.PoolClient> | undefined
  /** Releases the slot's connection, once. */
  drop?: () => void
  inFlight: number
}

/**
 * A few connections on which the statements marked `SHARED` of all requests run, in `pg`'s
 * pipeline mode: each is sent without waiting for the ones before it, and those sent in the same
 * turn of the event loop go in one write (the socket is corked until `setImmediate`). At
 * concurrency 32 a signed GET of an incoming payment spent 0.33–0.40 ms of the server's CPU and
 * 0.13–0.15 ms of PostgreSQL's on its one statement's connection from the pool, with a write, a
 * read and a PostgreSQL process's wake-up of its own; shared, 0.19–0.25 and 0.05–0.07 ms
 * (docs/performance.md, tenth pass). Each statement carries its own Sync, so it is its own transaction and a failed one
 * fails alone. A statement goes to the connection with the fewest in flight; a broken connection
 * is dropped and the next statement opens another.
 */
export class SharedConnections {
  readonly #slots: Slot[]
  readonly #corked = new Set<Socket>()
  #lockTimeouts = 0

  /**
   * `pool` holds the shared connections only (`size` of them); `own` runs a statement on a
   * connection of its own (the lock timeout's way out).
   */
  constructor(
    readonly pool: pg.Pool,
    size: number,
    readonly own: (text: string, values: unknown[]) => Promise<pg.QueryResult>,
  ) {
    this.#slots = Array.from({ length: size }, () => ({ client: undefined, inFlight: 0 }))
  }

  async query(text: string, values: unknown[]): Promise<pg.QueryResult> {
    let slot = this.#slots[0]!
    for (const s of this.#slots) if (s.inFlight < slot.inFlight) slot = s
    slot.inFlight++
    try {
      slot.client ??= this.#connect(slot)
      const client = await slot.client
      this.#cork(client)
      return await client.query(text, values)
    } catch (err) {
      if (sqlState(err) === '55P03') {
        this.#lockTimeouts++
        return this.own(text, values)
      }
      throw err
    } finally {
      slot.inFlight--
    }
  }

  /** For metrics: statements sent and not answered yet, and those that left on a lock timeout. */
  stats(): SharedStats {
    let inFlight = 0
    for (const s of this.#slots) inFlight += s.inFlight
    return { inFlight, lockTimeouts: this.#lockTimeouts }
  }

  /** Releases the connections: a statement still running on one fails. */
  async close(): Promise<void> {
    await Promise.allSettled(this.#slots.map((s) => s.client))
    for (const slot of this.#slots) slot.drop?.()
    await this.pool.end()
  }

  #connect(slot: Slot): Promise<pg.PoolClient> {
    const connecting = (async () => {
      const client = await this.pool.connect()
      let released = false
      // Once, whichever comes first: the connection's error, its end, or `close`.
      const drop = () => {
        if (slot.client === connecting) {
          slot.client = undefined
          slot.drop = undefined
        }
        if (!released) client.release(true)
        released = true
      }
      slot.drop = drop
      client.once('error', drop)
      client.once('end', drop)
      try {
        await client.query(`SET lock_timeout = ${SHARED_LOCK_TIMEOUT_MS}`)
      } catch (err) {
        drop()
        throw err
      }
      return client
    })()
    // A connection that could not be opened is tried again by the next statement.
    connecting.catch(() => {
      if (slot.client === connecting) slot.client = undefined
    })
    return connecting
  }

  /** Holds the connection's writes until this turn of the event loop has sent all it will. */
  #cork(client: pg.PoolClient): void {
    const { stream } = (client as unknown as { connection: { stream: Socket } }).connection
    if (this.#corked.has(stream)) return
    this.#corked.add(stream)
    stream.cork()
    setImmediate(() => {
      this.#corked.delete(stream)
      stream.uncork()
    })
  }
}
