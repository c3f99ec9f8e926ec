import { randomUUID } from 'node:crypto'
import { type RawBuilder, sql } from 'kysely'
import { type Db, prepared } from '../db/database.ts'
import { factsJson, type NewEvent, resourceOf } from './events.ts'

/**
 * Writes an event and one pending delivery for every enabled endpoint subscribed to its type, in
 * one statement inside the caller's transaction: the event exists if and only if the state change
 * that caused it commits. Nothing is sent here; the delivery worker picks the rows up.
 */
export async function recordEvent(trx: Db, event: NewEvent): Promise<string> {
  if (!trx.isTransaction) throw new Error('recordEvent must run in the state change’s transaction')
  const id = randomUUID()
  await sql`WITH ${eventAndDeliveries([[id, event]])} SELECT 1`.execute(trx)
  return id
}

/**
 * Runs `write` (a data-modifying statement with RETURNING) and records `event` in the same
 * statement: as atomic as a transaction, in one round trip instead of a transaction's two or more
 * (the write and the event, with BEGIN and COMMIT sent along: db/pipelined-postgres.ts). For a state change that is a single write. Several events are recorded in the
 * order given (their `seq`, which orders deliveries per resource). `alsoWrite`, CTEs of other
 * writes of the same change (not named `w`, `e` or `d`), run in the same statement. Returns the
 * rows `write` returned.
 */
export async function writeWithEvent<R>(
  db: Db,
  write: RawBuilder<unknown>,
  event: NewEvent | readonly NewEvent[],
  alsoWrite?: RawBuilder<unknown>,
  opts: {
    /** `write` may write nothing (a condition of its own): the events are recorded only if it did. */
    conditional?: boolean
  } = {},
): Promise<R[]> {
  const events = Array.isArray(event) ? event : [event as NewEvent]
  const { rows } = await sql<R>`
    WITH ${alsoWrite ? sql`${alsoWrite}, ` : sql``}w AS (${write}),
      ${eventAndDeliveries(
        events.map((e) => [randomUUID(), e]),
        opts.conditional,
      )}
    SELECT * FROM w`.execute(db)
  return rows
}

/**
 * The CTEs `e` and `d` that write the events and their deliveries (run even though nothing reads
 * `d`), as SQL text around `values`, the VALUES list's rows (id, type, resource, data). The rows
 * of one VALUES list are inserted in order, so their `seq` follows it; `onlyIfW`, only when the
 * CTE `w` returned a row.
 */
const eventCtes = (values: string, onlyIfW: boolean) => `
  e AS (
    INSERT INTO webhook_events (id, type, resource, data)
    ${
      onlyIfW
        ? `SELECT v.id::uuid, v.type, v.resource, v.data
             FROM (VALUES ${values}) v (id, type, resource, data)
            WHERE EXISTS (SELECT 1 FROM w)`
        : `VALUES ${values}`
    }
    RETURNING id, type, resource, seq
  ),
  d AS (
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, resource, event_seq, next_attempt_at)
    SELECT gen_random_uuid(), e.id, w.id, e.type, e.resource, e.seq, now()
      FROM e JOIN webhook_endpoints w
        ON e.type = ANY (w.event_types) AND w.enabled AND w.deleted_at IS NULL
  )`

// `eventCtes`' texts around the values, for Kysely to put its own parameters between.
const ctesAround = (onlyIfW: boolean) => eventCtes('\0', onlyIfW).split('\0') as [string, string]
const AROUND = { always: ctesAround(false), onlyIfW: ctesAround(true) }

/** An event's values in `eventCtes`' rows: id, type, resource, data. */
const eventValues = (id: string, event: NewEvent) =>
  [id, event.type, resourceOf(event), factsJson(event)] as const

const eventAndDeliveries = (events: readonly (readonly [string, NewEvent])[], onlyIfW = false) => {
  const values = sql.join(
    events.map(([id, event]) => {
      const [, type, resource, data] = eventValues(id, event)
      return sql`(${id}, ${type}, ${resource}, ${data}::jsonb)`
    }),
  )
  const [before, after] = onlyIfW ? AROUND.onlyIfW : AROUND.always
  return sql`${sql.raw(before)}${values}${sql.raw(after)}`
}

/**
 * The CTEs that record `events` in this order, for a caller's statement that writes the change they
 * tell of (in the same statement, so in its transaction); its own CTEs must not be named `e` or `d`.
 */
export const recordEventsCtes = (events: readonly NewEvent[]): RawBuilder<unknown> =>
  eventAndDeliveries(events.map((e) => [randomUUID(), e]))

/**
 * `writeWithEvent` as one statement prepared once (db/database.ts `prepared`), for a write on the
 * request path whose text is fixed: no query builder runs per call. `write` is SQL text with the
 * parameters `$1` to `$<writeParams>`; the events, `events` of them, take the parameters after.
 */
export function preparedWithEvent<R>(
  write: string,
  writeParams: number,
  opts: {
    events?: number
    conditional?: boolean
    /** `prepared`'s: an insert of rows with new ids (the events' are). */
    shared?: boolean
  } = {},
): (db: Db, params: readonly unknown[], events: readonly NewEvent[]) => Promise<R[]> {
  const count = opts.events ?? 1
  const rows = Array.from({ length: count }, (_, i) => {
    const n = writeParams + 4 * i
    return `($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}::jsonb)`
  }).join(', ')
  const run = prepared<R>(
    `WITH w AS (${write}), ${eventCtes(rows, opts.conditional ?? false)} SELECT * FROM w`,
    { shared: opts.shared },
  )
  return (db, params, events) => {
    if (params.length !== writeParams || events.length !== count) {
      throw new Error(`preparedWithEvent: ${writeParams} values and ${count} events expected`)
    }
    return run(db, [...params, ...events.flatMap((e) => eventValues(randomUUID(), e))])
  }
}
