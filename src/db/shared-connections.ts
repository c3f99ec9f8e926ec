import type { Socket } from 'node:net'
import { sql } from 'kysely'
import type pg from 'pg'
import { sqlState } from './errors.ts'
import { PIPELINED } from './pipelined-postgres.ts'

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

/**
 * The most writes of one turn that share a transaction: the first of them is answered only when
 * the last has run, and a group runs on one PostgreSQL process. The turn's writes beyond it start
 * another group, on the connection with the fewest statements in flight.
 */
export const MAX_WRITES_PER_TRANSACTION = 16

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

/** A shared write, waiting for the end of this turn of the event loop to be sent. */
interface Write {
  text: string
  values: unknown[]
  resolve: (result: pg.QueryResult) => void
  reject: (err: unknown) => void
}

/** Writes of one turn of the event loop, sent on one connection in one transaction. */
interface WriteGroup {
  slot: Slot
  writes: Write[]
}

/**
 * A few connections on which the statements marked `SHARED` of all requests run, in `pg`'s
 * pipeline mode: each is sent without waiting for the ones before it, and those sent in the same
 * turn of the event loop go in one write (the socket is corked until `setImmediate`). At
 * concurrency 32 a signed GET of an incoming payment spent 0.33–0.40 ms of the server's CPU and
 * 0.13–0.15 ms of PostgreSQL's on its one statement's connection from the pool, with a write, a
 * read and a PostgreSQL process's wake-up of its own; shared, 0.19–0.25 and 0.05–0.07 ms
 * (docs/performance.md, tenth pass). A read carries its own Sync, so it is its own transaction and
 * a failed one fails alone. The writes of one turn (up to `MAX_WRITES_PER_TRANSACTION`) go to one
 * connection between BEGIN and COMMIT, and each is answered once that COMMIT is: one commit, and
 * one flush of the WAL, for all of them, which is most of what a create costs PostgreSQL
 * (docs/performance.md, fourteenth pass). When one of them fails, nothing of the group commits and
 * each runs again alone, failing or not as it would have without the others. A statement goes to
 * the connection with the fewest in flight (a write, to its turn's group's); a broken connection
 * is dropped and the next statement opens another.
 */
export class SharedConnections {
  readonly #slots: Slot[]
  readonly #corked = new Set<Socket>()
  /** The writes of this turn of the event loop that will share a transaction, if any. */
  #open: WriteGroup | undefined
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
    const write = !isRead(text)
    const open = write ? this.#open : undefined
    const slot =
      open && open.writes.length < MAX_WRITES_PER_TRANSACTION ? open.slot : this.#idlest()
    slot.inFlight++
    try {
      slot.client ??= this.#connect(slot)
      if (write) return await this.#write(slot, text, values)
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

  #idlest(): Slot {
    let slot = this.#slots[0]!
    for (const s of this.#slots) if (s.inFlight < slot.inFlight) slot = s
    return slot
  }

  /**
   * Joins this turn's group of writes on `slot` (a new group if there is none there, or it is
   * full); answered once the group's COMMIT is.
   */
  #write(slot: Slot, text: string, values: unknown[]): Promise<pg.QueryResult> {
    return new Promise((resolve, reject) => {
      let group = this.#open
      if (group?.slot !== slot || group.writes.length >= MAX_WRITES_PER_TRANSACTION) {
        const created: WriteGroup = { slot, writes: [] }
        group = this.#open = created
        setImmediate(() => {
          if (this.#open === created) this.#open = undefined
          // Whatever goes wrong, each write is answered (a write answered already stays so).
          this.#send(created).catch((err) => {
            for (const w of created.writes) w.reject(err)
          })
        })
      }
      group.writes.push({ text, values, resolve, reject })
    })
  }

  async #send({ slot, writes }: WriteGroup): Promise<void> {
    let client: pg.PoolClient
    try {
      // Dropped since the turn began (the connection broke): the group opens another.
      client = await (slot.client ??= this.#connect(slot))
    } catch (err) {
      for (const w of writes) w.reject(err)
      return
    }
    const alone = (w: Write) => client.query(w.text, w.values).then(w.resolve, w.reject)
    if (writes.length === 1) {
      alone(writes[0]!)
      return
    }
    // One write: BEGIN, the statements (each with its own Sync, so that they are answered one by
    // one) and COMMIT. A statement that fails aborts the transaction; those behind it fail
    // unexecuted and the COMMIT answers ROLLBACK.
    const { stream } = (client as unknown as { connection: { stream: Socket } }).connection
    stream.cork()
    const begun = client.query(`BEGIN ${PIPELINED}`)
    const results = writes.map((w) => client.query(w.text, w.values))
    const committed = client.query(`COMMIT ${PIPELINED}`)
    stream.uncork()
    const [b, c, ...r] = await Promise.allSettled([begun, committed, ...results])
    const answerEach = () =>
      writes.forEach((w, i) => {
        const result = r[i]!
        if (result.status === 'fulfilled') w.resolve(result.value)
        else w.reject(result.reason)
      })
    // Committed, or (BEGIN refused, which a working connection does only inside a transaction,
    // and this one never is) each ran as its own transaction: each has its own answer.
    if (b.status === 'rejected' || (c.status === 'fulfilled' && c.value.command === 'COMMIT')) {
      answerEach()
      return
    }
    // Nothing of it committed (the COMMIT answered ROLLBACK, or refused with an error of its own):
    // each statement runs again alone, and answers as it would have without the others. Without an
    // answer from the server whether it committed (the connection lost), each fails, as one statement
    // sent alone would.
    const state = c.status === 'rejected' ? sqlState(c.reason) : undefined
    if (c.status === 'fulfilled' || (state !== undefined && !/^(08|57)/.test(state))) {
      for (const w of writes) alone(w)
      return
    }
    for (const w of writes) w.reject((c as PromiseRejectedResult).reason)
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

/** A statement that writes nothing: sent at once, not held for the turn's transaction. */
const isRead = (text: string) => /^\s*select\b/i.test(text.slice(SHARED_MARK.length))
