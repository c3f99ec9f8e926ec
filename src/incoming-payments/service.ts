import { randomUUID } from 'node:crypto'
import { type RawBuilder, sql } from 'kysely'
import {
  type TokenGrant,
  tokenActiveSql,
  tokenGrantOf,
  tokenGrantSql,
  tokenParams,
} from '../auth/grants.ts'
import { type Db, prepared } from '../db/database.ts'
import { inTransaction } from '../db/transaction.ts'
import { foldStats, type PaymentStats, type StatsRow } from '../lib/payment-stats.ts'
import { type FetchPage, keyset } from '../resource-server/pagination.ts'
import { preparedWithEvent, recordEvent } from '../webhooks/outbox.ts'

export interface IncomingPayment {
  id: string
  walletAddressId: string
  /** The owner's wallet address path and asset, joined in for URLs and amounts. */
  walletAddressPath: string
  assetCode: string
  assetScale: number
  client: string
  incomingAmount: bigint | null
  receivedAmount: bigint
  completedAt: Date | null
  /** Set when an operator cancelled it; `completedAt` is then set too (it is closed). */
  cancelledAt: Date | null
  cancelReason: string | null
  expiresAt: Date
  metadata: Record<string, unknown> | null
  createdAt: Date
  updatedAt: Date
}

/** What the admin API calls the payment's state; Open Payments clients only see `completed`. */
export type IncomingPaymentState = 'open' | 'completed' | 'expired' | 'cancelled'

export function stateOf(ip: IncomingPayment, now = new Date()): IncomingPaymentState {
  if (ip.cancelledAt !== null) return 'cancelled'
  if (ip.completedAt !== null) return 'completed'
  return ip.expiresAt > now ? 'open' : 'expired'
}

/** Whether the payment still accepts money at `now`. */
export const isOpen = (ip: IncomingPayment, now = new Date()) =>
  ip.completedAt === null && ip.expiresAt > now

export async function createIncomingPayment(
  db: Db,
  input: {
    walletAddress: { id: string; path: string; assetCode: string; assetScale: number }
    client: string
    incomingAmount?: bigint
    expiresAt: Date
    metadata?: Record<string, unknown>
    /** The hash of an access token whose state is checked by the write (`tokenActiveSql`). */
    tokenUnchecked?: string
  },
): Promise<IncomingPayment | 'inactive_token'> {
  const wa = input.walletAddress
  // Known before the write, so that the payment and its event are written by one statement. The
  // clock is this process's, to the millisecond (what a Date holds).
  const now = new Date()
  const ip: IncomingPayment = {
    id: randomUUID(),
    walletAddressId: wa.id,
    walletAddressPath: wa.path,
    assetCode: wa.assetCode,
    assetScale: wa.assetScale,
    client: input.client,
    incomingAmount: input.incomingAmount ?? null,
    receivedAmount: 0n,
    completedAt: null,
    cancelledAt: null,
    cancelReason: null,
    expiresAt: input.expiresAt,
    metadata: input.metadata ?? null,
    createdAt: now,
    updatedAt: now,
  }
  const token = input.tokenUnchecked
  const values = [
    ip.id,
    wa.id,
    ip.client,
    ip.incomingAmount,
    ip.expiresAt,
    ip.metadata === null ? null : JSON.stringify(ip.metadata),
    now,
  ]
  const event = [{ type: 'incoming_payment.created' as const, incomingPayment: ip }]
  const [row] =
    token === undefined
      ? await insertIncoming(db, values, event)
      : await insertIncomingIfToken(db, [...values, token], event)
  if (!row) return 'inactive_token'
  // As stored (jsonb orders keys), as every later read returns it.
  return { ...ip, metadata: row!.metadata }
}

// The columns the create writes, as parameters (`now` twice), and the statements that write them
// with the `created` event: the second only while the token whose hash is `$8` is active.
const INCOMING_INSERT = `INSERT INTO incoming_payments
  (id, wallet_address_id, client, incoming_amount, expires_at, metadata, created_at, updated_at)`
const INCOMING_VALUES = `$1::uuid, $2::uuid, $3::text, $4::numeric, $5::timestamptz, $6::jsonb,
  $7::timestamptz, $7::timestamptz`
type Inserted = { metadata: Record<string, unknown> | null }
const insertIncoming = preparedWithEvent<Inserted>(
  `${INCOMING_INSERT} VALUES (${INCOMING_VALUES}) RETURNING metadata`,
  7,
  { shared: true },
)
const insertIncomingIfToken = preparedWithEvent<Inserted>(
  `${INCOMING_INSERT} SELECT ${INCOMING_VALUES} WHERE ${tokenActiveSql('$8', '$7')}
     RETURNING metadata`,
  8,
  { conditional: true, shared: true },
)

export async function getIncomingPayment(
  db: Db,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<IncomingPayment | undefined> {
  if (!opts.forUpdate) {
    const [row] = await incomingById(db, [id])
    return row && toIncomingPayment(row)
  }
  const row = await selectIncoming(db).where('p.id', '=', id).forUpdate().executeTakeFirst()
  return row && toIncomingPayment(row)
}

/** `selectIncoming` as SQL text, for statements prepared once (the hot reads). */
const INCOMING_COLUMNS = `p.id, p.wallet_address_id, w.path, a.code, a.scale, p.client,
  p.incoming_amount, p.received_amount, p.completed_at, p.cancelled_at, p.cancel_reason,
  p.expires_at, p.metadata, p.created_at, p.updated_at`
const INCOMING_JOINS = `incoming_payments p
  JOIN wallet_addresses w ON w.id = p.wallet_address_id
  JOIN assets a ON a.id = w.asset_id`

const incomingById = prepared<Row>(
  `SELECT ${INCOMING_COLUMNS} FROM ${INCOMING_JOINS} WHERE p.id = $1`,
  { shared: true },
)

const incomingWithTokenGrant = prepared<Partial<Row> & { token_grant: unknown }>(
  `SELECT ${INCOMING_COLUMNS}, ${tokenGrantSql('$2', '$3')} AS token_grant
     FROM (SELECT 1) one LEFT JOIN (${INCOMING_JOINS}) ON p.id = $1`,
  { shared: true },
)

/**
 * An incoming payment (undefined when there is none) and the grant of the request's access token,
 * in one statement: a request that names a payment is introspected by the same read that loads it.
 */
export async function getIncomingPaymentWithTokenGrant(
  db: Db,
  id: string,
  token: string | undefined,
): Promise<{ payment: IncomingPayment | undefined; grant: TokenGrant | undefined }> {
  const [row] = await incomingWithTokenGrant(db, [id, ...tokenParams(token, new Date())])
  return {
    payment: row?.id == null ? undefined : toIncomingPayment(row as Row),
    grant: tokenGrantOf(row?.token_grant),
  }
}

/**
 * Pages of incoming payments, newest first: a wallet address's (optionally only one client's), or
 * every wallet address's; optionally in one state.
 */
export function incomingPaymentPages(
  db: Db,
  filter: { walletAddressId?: string; client?: string; state?: IncomingPaymentState },
): FetchPage<IncomingPayment> {
  return async ({ cursorId, direction, limit }) => {
    let q = selectIncoming(db)
    if (filter.walletAddressId !== undefined)
      q = q.where('p.wallet_address_id', '=', filter.walletAddressId)
    if (filter.client !== undefined) q = q.where('p.client', '=', filter.client)
    if (filter.state !== undefined) q = q.where(inState(filter.state))
    const page = keyset('incoming_payments', cursorId, direction)
    if (page.where) q = q.where(page.where)
    const rows = await q
      .orderBy('p.created_at', page.order)
      .orderBy('p.id', page.order)
      .limit(limit)
      .execute()
    return rows.map(toIncomingPayment)
  }
}

/** The SQL condition of `stateOf` on the payment aliased `p`. */
function inState(state: IncomingPaymentState) {
  switch (state) {
    case 'cancelled':
      return sql<boolean>`p.cancelled_at IS NOT NULL`
    case 'completed':
      return sql<boolean>`p.completed_at IS NOT NULL AND p.cancelled_at IS NULL`
    case 'expired':
      return sql<boolean>`p.completed_at IS NULL AND p.expires_at <= now()`
    case 'open':
      return sql<boolean>`p.completed_at IS NULL AND p.expires_at > now()`
  }
}

const STATES: readonly IncomingPaymentState[] = ['open', 'completed', 'expired', 'cancelled']

/**
 * Incoming payments created since `since`: how many are in each state now, and per UTC day and
 * asset how many were created and what they have received.
 */
export async function incomingPaymentStats(
  db: Db,
  since: Date,
): Promise<PaymentStats<IncomingPaymentState>> {
  // The CASE is `stateOf` (and `inState`) in SQL.
  const { rows } = await sql<StatsRow>`
    SELECT to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS date,
           a.code AS asset_code, a.scale AS asset_scale,
           CASE WHEN p.cancelled_at IS NOT NULL THEN 'cancelled'
                WHEN p.completed_at IS NOT NULL THEN 'completed'
                WHEN p.expires_at > now() THEN 'open'
                ELSE 'expired' END AS state,
           count(*) AS count, sum(p.received_amount) AS amount
      FROM incoming_payments p
      JOIN wallet_addresses w ON w.id = p.wallet_address_id
      JOIN assets a ON a.id = w.asset_id
     WHERE p.created_at >= ${since}
     GROUP BY 1, 2, 3, 4`.execute(db)
  return foldStats(STATES, rows)
}

export type CompleteError = 'wrong_state'

/** Marks an open payment completed; a completed or expired one is `wrong_state`. */
export async function completeIncomingPayment(
  db: Db,
  id: string,
): Promise<IncomingPayment | CompleteError> {
  return inTransaction(db, async (trx) => {
    const done = await trx
      .updateTable('incoming_payments')
      .set({ completed_at: sql`now()`, updated_at: sql`now()` })
      .where('id', '=', id)
      .where('completed_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`)
      .executeTakeFirst()
    if (done.numUpdatedRows === 0n) return 'wrong_state' as const
    const ip = (await getIncomingPayment(trx, id))!
    await recordEvent(trx, { type: 'incoming_payment.completed', incomingPayment: ip })
    return ip
  })
}

export type CancelError = 'not_found' | 'wrong_state'

/**
 * Closes an open payment for good, with the operator's reason: it accepts no more money by any
 * path, because crediting needs `completed_at` to be null. Cancelling a cancelled payment returns
 * it unchanged (`replayed`); a completed or expired one is `wrong_state`.
 */
export async function cancelIncomingPayment(
  db: Db,
  id: string,
  reason: string,
): Promise<{ payment: IncomingPayment; replayed: boolean } | CancelError> {
  return db.transaction().execute(async (trx) => {
    const done = await trx
      .updateTable('incoming_payments')
      .set({
        completed_at: sql`now()`,
        cancelled_at: sql`now()`,
        cancel_reason: reason,
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .where('completed_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`)
      .executeTakeFirst()
    const payment = await getIncomingPayment(trx, id)
    if (!payment) return 'not_found' as const
    if (done.numUpdatedRows === 1n) {
      await recordEvent(trx, { type: 'incoming_payment.cancelled', incomingPayment: payment })
      return { payment, replayed: false }
    }
    return payment.cancelledAt !== null ? { payment, replayed: true } : ('wrong_state' as const)
  })
}

export type CreditError = 'not_payable' | 'exceeds_incoming_amount'

/** A credited payment, with its owner's wallet (where the money goes). */
export interface CreditedPayment extends IncomingPayment {
  wallet: { ledgerAccountId: string; assetId: string }
}

/**
 * The credit of incoming payment `id` by `amount` (parameter names, as `$1`): it returns the
 * payment's row (`CreditedRow`) only if the payment is open and the amount fits. The wallet and
 * asset are joined in, not locked (an UPDATE locks only its target's rows). A statement that
 * locks more may use this text as a CTE, as settlement at create does.
 */
export const creditSql = (id: string, amount: string) => `
  UPDATE incoming_payments p
     SET received_amount = p.received_amount + ${amount},
         completed_at = CASE WHEN p.incoming_amount = p.received_amount + ${amount} THEN now() END,
         updated_at = now()
    FROM wallet_addresses w JOIN assets a ON a.id = w.asset_id
   WHERE p.id = ${id} AND w.id = p.wallet_address_id
     AND p.completed_at IS NULL AND p.expires_at > now()
     AND (p.incoming_amount IS NULL OR p.received_amount + ${amount} <= p.incoming_amount)
  RETURNING p.id, p.wallet_address_id, w.path, a.code, a.scale, p.client, p.incoming_amount,
    p.received_amount, p.completed_at, p.cancelled_at, p.cancel_reason, p.expires_at, p.metadata,
    p.created_at, p.updated_at, w.ledger_account_id, w.asset_id`

/** A row `creditSql` returns. */
export type CreditedRow = Row & { ledger_account_id: string; asset_id: string }

const creditOne = prepared<CreditedRow>(creditSql('$1', '$2::numeric'))

/** The incoming payment and its wallet's ledger account, from a row `creditSql` returned. */
export function toCreditedPayment(row: CreditedRow): CreditedPayment {
  return {
    ...toIncomingPayment(row),
    wallet: { ledgerAccountId: row.ledger_account_id, assetId: row.asset_id },
  }
}

/**
 * Adds `amount` to what the payment received, inside the caller's transaction, as one conditional
 * update that returns the payment as updated: never after completion or expiry, never beyond
 * `incomingAmount`, and completing the payment when it reaches that amount (its
 * `incoming_payment.completed` event is recorded here). Concurrent credits serialise on the row.
 */
export async function creditIncomingPayment(
  trx: Db,
  id: string,
  amount: bigint,
): Promise<CreditedPayment | CreditError> {
  const row = (await creditOne(trx, [id, amount]))[0]
  if (row) {
    const { wallet, ...ip } = toCreditedPayment(row)
    // Completed by this credit: the update only touches payments that were open.
    if (ip.completedAt !== null)
      await recordEvent(trx, { type: 'incoming_payment.completed', incomingPayment: ip })
    return { ...ip, wallet }
  }
  const current = await getIncomingPayment(trx, id)
  return current && isOpen(current) ? 'exceeds_incoming_amount' : 'not_payable'
}

/** What a batch of credits needs to know of a payment, read with its row locked. */
export interface LockedForCredit {
  id: string
  /** Not completed, not expired (by the database's clock). */
  open: boolean
  /** What it may still receive; null without an incoming amount. */
  room: bigint | null
}

/**
 * The query that locks the payments' rows (ascending id order) for a batch of credits in the
 * caller's transaction, as `creditIncomingPayment` locks one: before any ledger account, so that the
 * two never wait on each other in opposite orders. Its rows are `LockedForCredit`s; it is a
 * fragment so that the caller can lock and read more in the same round trip.
 */
export function lockForCreditSql(ids: string[]): RawBuilder<LockedForCredit> {
  return sql<LockedForCredit>`
    SELECT id::text AS id, completed_at IS NULL AND expires_at > now() AS open,
           incoming_amount - received_amount AS room
      FROM incoming_payments
     WHERE id IN (${sql.join(ids)})
     ORDER BY id
       FOR UPDATE`
}

/**
 * The batch form of `creditIncomingPayment`, as a CTE (`credited_payments`, returning `id` and
 * `completed`) for the caller's statement, on rows locked by `lockForCreditSql` and amounts that
 * fit (the caller checked them against `room`): one update per payment carrying its sum, with the
 * same conditions, so that a sum that no longer fits leaves its payment out of the result, which
 * the caller must treat as a failure. The completed ones then need `recordCompletions`.
 */
export function creditPaymentsCte(credits: Map<string, bigint>): RawBuilder<unknown> {
  const values = [...credits].map(([id, amount]) => sql`(${id}::uuid, ${amount}::numeric)`)
  return sql`credited_payments AS (
    UPDATE incoming_payments p
       SET received_amount = p.received_amount + v.amount,
           completed_at = CASE WHEN p.incoming_amount = p.received_amount + v.amount THEN now() END,
           updated_at = now()
      FROM (VALUES ${sql.join(values)}) AS v (id, amount)
     WHERE p.id = v.id AND p.completed_at IS NULL AND p.expires_at > now()
       AND (p.incoming_amount IS NULL OR p.received_amount + v.amount <= p.incoming_amount)
    RETURNING p.id::text AS id, p.completed_at IS NOT NULL AS completed)`
}

/** Records `incoming_payment.completed` for payments a batch of credits completed, in its transaction. */
export async function recordCompletions(trx: Db, ids: Iterable<string>): Promise<void> {
  for (const id of ids) {
    const ip = (await getIncomingPayment(trx, id))!
    await recordEvent(trx, { type: 'incoming_payment.completed', incomingPayment: ip })
  }
}

/**
 * Records the expiry of up to `limit` payments that expired unpaid, once each: the payments are
 * claimed with `FOR UPDATE SKIP LOCKED` (so several processes share the work) and marked in the
 * transaction that writes their `incoming_payment.expired` event. Returns how many.
 */
export async function recordExpiries(db: Db, limit = 100): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('incoming_payments')
      .select('id')
      .where('completed_at', 'is', null)
      .where('expiry_recorded_at', 'is', null)
      .where('expires_at', '<=', sql<Date>`now()`)
      .orderBy('expires_at')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute()
    if (due.length === 0) return 0
    const ids = due.map((r) => r.id)
    await trx
      .updateTable('incoming_payments')
      .set({ expiry_recorded_at: sql`now()` })
      .where('id', 'in', ids)
      .execute()
    for (const id of ids) {
      const ip = (await getIncomingPayment(trx, id))!
      await recordEvent(trx, { type: 'incoming_payment.expired', incomingPayment: ip })
    }
    return ids.length
  })
}

function selectIncoming(db: Db) {
  return db
    .selectFrom('incoming_payments as p')
    .innerJoin('wallet_addresses as w', 'w.id', 'p.wallet_address_id')
    .innerJoin('assets as a', 'a.id', 'w.asset_id')
    .select([
      'p.id',
      'p.wallet_address_id',
      'w.path',
      'a.code',
      'a.scale',
      'p.client',
      'p.incoming_amount',
      'p.received_amount',
      'p.completed_at',
      'p.cancelled_at',
      'p.cancel_reason',
      'p.expires_at',
      'p.metadata',
      'p.created_at',
      'p.updated_at',
    ])
}

type Row = Awaited<ReturnType<ReturnType<typeof selectIncoming>['executeTakeFirstOrThrow']>>

function toIncomingPayment(r: Row): IncomingPayment {
  return {
    id: r.id,
    walletAddressId: r.wallet_address_id,
    walletAddressPath: r.path,
    assetCode: r.code,
    assetScale: r.scale,
    client: r.client,
    incomingAmount: r.incoming_amount,
    receivedAmount: r.received_amount,
    completedAt: r.completed_at,
    cancelledAt: r.cancelled_at,
    cancelReason: r.cancel_reason,
    expiresAt: r.expires_at,
    metadata: r.metadata as Record<string, unknown> | null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}
