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
  rollbacks: number
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
 * (docs/performance-history.md, tenth pass). A read carries its own Sync, so it is its own transaction and
 * a failed one fails alone. The writes of one turn (up to `MAX_WRITES_PER_TRANSACTION`) go to one
 * connection between BEGIN and COMMIT, and each is answered once that COMMIT is: one commit, and
 * one flush of the WAL, for all of them, which is most of what a create costs PostgreSQL
 * (docs/performance-history.md, fourteenth pass). When one of them fails, nothing of the group commits:
 * it runs again alone, the others again together (`#run`), so that each fails, or not, as it would
 * have without the others. A statement goes to the connection with the fewest in flight (a write,
 * to its turn's group's); a broken connection is dropped and the next statement opens another.
 */
export class SharedConnections {
  readonly #slots: Slot[]
  readonly #corked = new Set<Socket>()
  /** The writes of this turn of the event loop that will share a transaction, if any. */
  #open: WriteGroup | undefined
  #lockTimeouts = 0
  #rollbacks = 0

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
    // Dropped since the turn began (the connection broke): the group opens another.
    slot.client ??= this.#connect(slot)
    let client: pg.PoolClient
    try {
      client = await slot.client
    } catch (err) {
      for (const w of writes) w.reject(err)
      return
    }
    await this.#run(client, writes)
  }

  /**
   * Runs `writes` on `client`, a single one alone, several in one transaction: BEGIN, the
   * statements (each with its own Sync, so that each is answered) and COMMIT, in one write. A
   * statement that fails aborts the transaction, those behind it fail unexecuted and the COMMIT
   * answers ROLLBACK; then the first to fail runs alone (or, if it waited for a lock past the lock
   * timeout, on a connection of its own: `query`), and the others again in one transaction, so
   * that each answers as it would have without the others.
   */
  async #run(client: pg.PoolClient, writes: Write[]): Promise<void> {
    if (writes.length === 1) {
      const [w] = writes as [Write]
      await client.query(w.text, w.values).then(w.resolve, w.reject)
      return
    }
    const { stream } = (client as unknown as { connection: { stream: Socket } }).connection
    const sent: Promise<pg.QueryResult>[] = []
    stream.cork()
    try {
      // READ COMMITTED whatever the database's default: each statement on a snapshot of its own,
      // as when it runs alone.
      sent.push(client.query(`BEGIN ISOLATION LEVEL READ COMMITTED ${PIPELINED}`))
      for (const w of writes) sent.push(client.query(w.text, w.values))
      sent.push(client.query(`COMMIT ${PIPELINED}`))
    } finally {
      stream.uncork()
    }
    const [b, ...r] = await Promise.allSettled(sent)
    const c = r.pop()!
    // Committed, or (BEGIN refused, which a working connection does only inside a transaction,
    // and this one never is) each ran as its own transaction: each has its own answer.
    if (b!.status === 'rejected' || (c.status === 'fulfilled' && c.value.command === 'COMMIT')) {
      writes.forEach((w, i) => {
        const result = r[i]!
        if (result.status === 'fulfilled') w.resolve(result.value)
        else w.reject(result.reason)
      })
      return
    }
    // Without the server's word that nothing committed (the connection lost), each fails, as a
    // statement sent alone would.
    if (c.status === 'rejected' && !rolledBack(c.reason)) {
      for (const w of writes) w.reject(c.reason)
      return
    }
    this.#rollbacks++
    const first = r.findIndex((result) => result.status === 'rejected')
    if (first === -1) {
      // The COMMIT refused by itself: each alone.
      await Promise.all(writes.map((w) => this.#run(client, [w])))
      return
    }
    const failed = writes[first]!
    const reason = (r[first] as PromiseRejectedResult).reason
    await Promise.all([
      sqlState(reason) === '55P03' ? failed.reject(reason) : this.#run(client, [failed]),
      this.#run(
        client,
        writes.filter((_, i) => i !== first),
      ),
    ])
  }

  /**
   * For metrics: statements sent and not answered yet, those that left on a lock timeout, and
   * transactions of writes rolled back because one of them failed.
   */
  stats(): SharedStats {
    let inFlight = 0
    for (const s of this.#slots) inFlight += s.inFlight
    return { inFlight, lockTimeouts: this.#lockTimeouts, rollbacks: this.#rollbacks }
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

// The mark, then SELECT: matched on the text as it is, without a copy of it per statement.
const SHARED_READ = new RegExp(`^${SHARED_MARK.replace(/[/*]/g, '\\$&')}\\s*select\\b`, 'i')

/**
 * A statement that writes nothing: sent at once, not held for the turn's transaction. A shared read
 * must start with SELECT (one that starts otherwise, with WITH say, would still be right, only
 * answered after the turn's COMMIT).
 */
const isRead = (text: string) => SHARED_READ.test(text)

/**
 * The server answered with an error of its own, so the transaction is over and nothing of it
 * committed; not a lost connection (class 08, or 57: the server shutting the session), and not
 * Node's error for a socket (EPIPE), whose outcome is unknown.
 */
const rolledBack = (err: unknown) =>
  typeof (err as { severity?: unknown } | null)?.severity === 'string' &&
  !/^(08|57)/.test(sqlState(err) ?? '08')
