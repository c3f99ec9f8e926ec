import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import { inTransaction } from '../db/transaction.ts'
import { type FetchPage, keyset } from '../resource-server/pagination.ts'
import { recordEvent } from '../webhooks/outbox.ts'

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
  expiresAt: Date
  metadata: Record<string, unknown> | null
  createdAt: Date
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
  },
): Promise<IncomingPayment> {
  const wa = input.walletAddress
  return inTransaction(db, async (trx) => {
    const row = await trx
      .insertInto('incoming_payments')
      .values({
        id: randomUUID(),
        wallet_address_id: wa.id,
        client: input.client,
        incoming_amount: input.incomingAmount ?? null,
        expires_at: input.expiresAt,
        metadata: input.metadata === undefined ? null : JSON.stringify(input.metadata),
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    const ip = toIncomingPayment({
      ...row,
      path: wa.path,
      code: wa.assetCode,
      scale: wa.assetScale,
    })
    await recordEvent(trx, { type: 'incoming_payment.created', incomingPayment: ip })
    return ip
  })
}

export async function getIncomingPayment(
  db: Db,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<IncomingPayment | undefined> {
  let q = selectIncoming(db).where('p.id', '=', id)
  if (opts.forUpdate) q = q.forUpdate()
  const row = await q.executeTakeFirst()
  return row && toIncomingPayment(row)
}

/** Pages of a wallet address's incoming payments, optionally only one client's. */
export function incomingPaymentPages(
  db: Db,
  filter: { walletAddressId: string; client?: string },
): FetchPage<IncomingPayment> {
  return async ({ cursorId, direction, limit }) => {
    let q = selectIncoming(db).where('p.wallet_address_id', '=', filter.walletAddressId)
    if (filter.client !== undefined) q = q.where('p.client', '=', filter.client)
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

export type CreditError = 'not_payable' | 'exceeds_incoming_amount'

/**
 * Adds `amount` to what the payment received, inside the caller's transaction, as one conditional
 * update: never after completion or expiry, never beyond `incomingAmount`, and completing the
 * payment when it reaches that amount. Concurrent credits serialise on the row.
 */
export async function creditIncomingPayment(
  trx: Db,
  id: string,
  amount: bigint,
): Promise<IncomingPayment | CreditError> {
  const updated = await trx
    .updateTable('incoming_payments')
    .set({
      received_amount: sql`received_amount + ${amount}`,
      completed_at: sql`CASE WHEN incoming_amount = received_amount + ${amount} THEN now() END`,
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .where('completed_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .where((eb) =>
      eb.or([
        eb('incoming_amount', 'is', null),
        eb(sql`received_amount + ${amount}`, '<=', eb.ref('incoming_amount')),
      ]),
    )
    .executeTakeFirst()
  if (updated.numUpdatedRows === 1n) {
    const ip = (await getIncomingPayment(trx, id))!
    // Completed by this credit: the update only touches payments that were open.
    if (ip.completedAt !== null)
      await recordEvent(trx, { type: 'incoming_payment.completed', incomingPayment: ip })
    return ip
  }
  const current = await getIncomingPayment(trx, id)
  return current && isOpen(current) ? 'exceeds_incoming_amount' : 'not_payable'
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
      'p.expires_at',
      'p.metadata',
      'p.created_at',
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
    expiresAt: r.expires_at,
    metadata: r.metadata as Record<string, unknown> | null,
    createdAt: r.created_at,
  }
}
