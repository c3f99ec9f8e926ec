import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { sql } from 'kysely'
import { pino } from 'pino'
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts'
import { createAsset } from '../assets/service.ts'
import type { Deps } from '../deps.ts'
import {
  available,
  createAccount,
  getAccount,
  getAssetAccount,
  getSettlementAccount,
} from './accounts.ts'
import { startLedgerExpiry } from './expiry-worker.ts'
import { checkBooks } from './invariants.ts'
import { foldDeltas } from './limit-free.ts'
import {
  createTransfer,
  expireOverdueTransfers,
  postAtOnce,
  postTransfer,
  voidTransfer,
} from './transfers.ts'
import { isLedgerError, type LedgerError } from './types.ts'

let database: TestDatabase
let assetId: string
let settlementId: string

before(async () => {
  database = await createTestDatabase({ poolSize: 20 })
  const asset = await createAsset(database.db, { code: 'USD', scale: 2 })
  assert.ok(typeof asset !== 'string')
  assetId = asset.id
  settlementId = (await getSettlementAccount(database.db, assetId)).id
})
after(() => database.drop())

const db = () => database.db
const tx = <T>(fn: (trx: TestDatabase['db']) => Promise<T>) => db().transaction().execute(fn)
const wallet = () => createAccount(db(), assetId, 'wallet')
const transfer = (debitAccountId: string, creditAccountId: string, amount: bigint, extra = {}) =>
  tx((trx) =>
    createTransfer(trx, { id: randomUUID(), debitAccountId, creditAccountId, amount, ...extra }),
  )
const balanceOf = async (id: string) => available((await getAccount(db(), id))!)
const expectError = (v: unknown, code: LedgerError['code']) => {
  assert.ok(isLedgerError(v), `expected ${code}, got a transfer`)
  assert.equal(v.code, code)
}
const assertBooksBalanced = async () => {
  const report = await checkBooks(db())
  assert.deepEqual(report.mismatchedAccounts, [])
  assert.ok(
    report.balanced,
    JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
  )
}

describe('posted transfers', () => {
  test('move money and refuse to overdraw a wallet, writing nothing', async () => {
    const a = await wallet()
    const b = await wallet()
    assert.ok(!isLedgerError(await transfer(settlementId, a.id, 100n)))
    expectError(await transfer(a.id, b.id, 101n), 'insufficient_balance')
    assert.equal(await balanceOf(a.id), 100n)
    assert.ok(!isLedgerError(await transfer(a.id, b.id, 100n)))
    assert.equal(await balanceOf(a.id), 0n)
    assert.equal(await balanceOf(b.id), 100n)
    await assertBooksBalanced()
  })

  test('are idempotent by id', async () => {
    const a = await wallet()
    const id = randomUUID()
    const input = { id, debitAccountId: settlementId, creditAccountId: a.id, amount: 7n }
    const first = await tx((trx) => createTransfer(trx, input))
    const second = await tx((trx) => createTransfer(trx, input))
    assert.ok(!isLedgerError(first) && !isLedgerError(second))
    assert.equal(first.replayed, false)
    assert.equal(second.replayed, true)
    assert.equal(await balanceOf(a.id), 7n)
    expectError(
      await tx((trx) => createTransfer(trx, { ...input, amount: 8n })),
      'exists_with_different_fields',
    )
    assert.equal(await balanceOf(a.id), 7n)
  })

  test('reject bad amounts, unknown and same accounts, and mixed assets', async () => {
    const a = await wallet()
    expectError(await transfer(settlementId, a.id, 0n), 'invalid_amount')
    expectError(await transfer(settlementId, a.id, -5n), 'invalid_amount')
    expectError(await transfer(settlementId, a.id, 2n ** 64n), 'invalid_amount')
    expectError(await transfer(a.id, a.id, 1n), 'same_account')
    expectError(await transfer(settlementId, randomUUID(), 1n), 'unknown_account')
    const eur = await createAsset(db(), { code: 'EUR', scale: 2 })
    assert.ok(typeof eur !== 'string')
    const e = await createAccount(db(), eur.id, 'wallet')
    expectError(await transfer(settlementId, e.id, 1n), 'asset_mismatch')
    await assertBooksBalanced()
  })

  test('accept the largest uint64 amount and sum beyond it in balances', async () => {
    const a = await wallet()
    const max = 2n ** 64n - 1n
    assert.ok(!isLedgerError(await transfer(settlementId, a.id, max)))
    assert.ok(!isLedgerError(await transfer(settlementId, a.id, max)))
    assert.equal(await balanceOf(a.id), 2n * max)
    await assertBooksBalanced()
  })

  test('cannot be changed or deleted', async () => {
    const a = await wallet()
    const t = await transfer(settlementId, a.id, 5n)
    assert.ok(!isLedgerError(t))
    await assert.rejects(
      sql`UPDATE ledger_transfers SET amount = 6 WHERE id = ${t.id}`.execute(db()),
      /can no longer change/,
    )
    await assert.rejects(
      sql`DELETE FROM ledger_transfers WHERE id = ${t.id}`.execute(db()),
      /append-only/,
    )
  })
})

describe('two-phase transfers', () => {
  test('reserve, then post in part and release the rest', async () => {
    const a = await wallet()
    const b = await wallet()
    await transfer(settlementId, a.id, 100n)
    const p = await transfer(a.id, b.id, 60n, { pendingUntil: new Date(Date.now() + 60_000) })
    assert.ok(!isLedgerError(p))
    assert.equal(p.state, 'pending')
    assert.equal(await balanceOf(a.id), 40n)
    expectError(await transfer(a.id, b.id, 41n), 'insufficient_balance')
    const posted = await tx((trx) => postTransfer(trx, p.id, 45n))
    assert.ok(!isLedgerError(posted))
    assert.equal(posted.state, 'posted')
    assert.equal(posted.postedAmount, 45n)
    assert.equal(await balanceOf(a.id), 55n)
    assert.equal(await balanceOf(b.id), 45n)
    // Same post again is a no-op; a different resolution is refused.
    assert.ok(!isLedgerError(await tx((trx) => postTransfer(trx, p.id, 45n))))
    expectError(await tx((trx) => voidTransfer(trx, p.id)), 'already_resolved')
    expectError(await tx((trx) => postTransfer(trx, p.id, 50n)), 'already_resolved')
    assert.equal(await balanceOf(a.id), 55n)
    await assertBooksBalanced()
  })

  test('void releases the reservation; posting more than reserved is refused', async () => {
    const a = await wallet()
    const b = await wallet()
    await transfer(settlementId, a.id, 10n)
    const p = await transfer(a.id, b.id, 10n, { pendingUntil: new Date(Date.now() + 60_000) })
    assert.ok(!isLedgerError(p))
    expectError(await tx((trx) => postTransfer(trx, p.id, 11n)), 'invalid_amount')
    assert.ok(!isLedgerError(await tx((trx) => voidTransfer(trx, p.id))))
    assert.equal(await balanceOf(a.id), 10n)
    assert.equal((await getAccount(db(), b.id))!.creditsPending, 0n)
    expectError(await tx((trx) => postTransfer(trx, randomUUID())), 'unknown_transfer')
    await assertBooksBalanced()
  })

  test('expire: an overdue pending transfer cannot be posted and the worker releases it', async () => {
    const a = await wallet()
    const b = await wallet()
    await transfer(settlementId, a.id, 10n)
    const p = await transfer(a.id, b.id, 10n, { pendingUntil: new Date(Date.now() + 300) })
    assert.ok(!isLedgerError(p))
    await new Promise((r) => setTimeout(r, 400))
    expectError(await tx((trx) => postTransfer(trx, p.id)), 'pending_expired')
    assert.ok((await expireOverdueTransfers(db(), new Date())) >= 1)
    assert.equal(await balanceOf(a.id), 10n)
    const row = await db()
      .selectFrom('ledger_transfers')
      .select('state')
      .where('id', '=', p.id)
      .executeTakeFirstOrThrow()
    assert.equal(row.state, 'expired')
    await assertBooksBalanced()
  })
})

test('the expiry worker releases what nobody resolved', async () => {
  const a = await wallet()
  const b = await wallet()
  await transfer(settlementId, a.id, 10n)
  const p = await transfer(a.id, b.id, 10n, { pendingUntil: new Date(Date.now() + 100) })
  assert.ok(!isLedgerError(p))
  const worker = startLedgerExpiry(
    { db: db(), logger: pino({ level: 'silent' }) } as unknown as Deps,
    { intervalMs: 50 },
  )
  try {
    for (let i = 0; i < 100 && (await balanceOf(a.id)) !== 10n; i++)
      await new Promise((r) => setTimeout(r, 20))
  } finally {
    await worker.stop()
  }
  assert.equal(await balanceOf(a.id), 10n)
  await assertBooksBalanced()
})

describe('concurrency on real PostgreSQL', () => {
  test('60 concurrent transfers against a balance covering 25: exactly 25 post, the rest fail cleanly', async () => {
    const source = await wallet()
    const sink = await wallet()
    await transfer(settlementId, source.id, 250n)
    const results = await Promise.all(
      Array.from({ length: 60 }, () => transfer(source.id, sink.id, 10n)),
    )
    const ok = results.filter((r) => !isLedgerError(r))
    const failed = results.filter(isLedgerError)
    assert.equal(ok.length, 25)
    assert.equal(failed.length, 35)
    assert.ok(failed.every((f) => f.code === 'insufficient_balance'))
    assert.equal(await balanceOf(source.id), 0n)
    assert.equal(await balanceOf(sink.id), 250n)
    const rows = await db()
      .selectFrom('ledger_transfers')
      .select('id')
      .where('debit_account_id', '=', source.id)
      .execute()
    assert.equal(rows.length, 25)
    await assertBooksBalanced()
  })

  test('20 concurrent creates with one id move the money once', async () => {
    const a = await wallet()
    const input = {
      id: randomUUID(),
      debitAccountId: settlementId,
      creditAccountId: a.id,
      amount: 3n,
    }
    const results = await Promise.all(
      Array.from({ length: 20 }, () => tx((trx) => createTransfer(trx, input))),
    )
    assert.ok(results.every((r) => !isLedgerError(r)))
    assert.equal(results.filter((r) => !isLedgerError(r) && !r.replayed).length, 1)
    assert.equal(await balanceOf(a.id), 3n)
    await assertBooksBalanced()
  })

  test('crossing transfers between two wallets never deadlock', async () => {
    const a = await wallet()
    const b = await wallet()
    await transfer(settlementId, a.id, 1000n)
    await transfer(settlementId, b.id, 1000n)
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 ? transfer(a.id, b.id, 7n) : transfer(b.id, a.id, 5n),
      ),
    )
    assert.ok(results.every((r) => !isLedgerError(r)))
    assert.equal((await balanceOf(a.id)) + (await balanceOf(b.id)), 2000n)
    await assertBooksBalanced()
  })

  test('concurrent post and void of one pending transfer: one wins', async () => {
    const a = await wallet()
    const b = await wallet()
    await transfer(settlementId, a.id, 10n)
    const p = await transfer(a.id, b.id, 10n, { pendingUntil: new Date(Date.now() + 60_000) })
    assert.ok(!isLedgerError(p))
    const [posted, voided] = await Promise.all([
      tx((trx) => postTransfer(trx, p.id)),
      tx((trx) => voidTransfer(trx, p.id)),
    ])
    assert.equal([posted, voided].filter(isLedgerError).length, 1)
    assert.equal((await balanceOf(a.id)) + (await balanceOf(b.id)), 10n)
    await assertBooksBalanced()
  })
})

describe('properties', () => {
  type Op =
    | { kind: 'deposit'; to: number; amount: bigint }
    | { kind: 'move'; from: number; to: number; amount: bigint }
    | { kind: 'reserve'; from: number; to: number; amount: bigint }
    | { kind: 'post'; which: number; fraction: number }
    | { kind: 'void'; which: number }

  const amount = fc.bigInt({ min: 1n, max: 1_000n })
  const idx = fc.nat({ max: 2 })
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('deposit' as const), to: idx, amount }),
    fc.record({ kind: fc.constant('move' as const), from: idx, to: idx, amount }),
    fc.record({ kind: fc.constant('reserve' as const), from: idx, to: idx, amount }),
    fc.record({
      kind: fc.constant('post' as const),
      which: fc.nat({ max: 9 }),
      fraction: fc.integer({ min: 1, max: 4 }),
    }),
    fc.record({ kind: fc.constant('void' as const), which: fc.nat({ max: 9 }) }),
  )

  test('any sequence of operations keeps wallets non-negative, matches a model, and balances the books', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const wallets = [await wallet(), await wallet(), await wallet()]
        const model = { posted: [0n, 0n, 0n], reserved: [0n, 0n, 0n] }
        const pendings: { id: string; from: number; to: number; amount: bigint; open: boolean }[] =
          []
        for (const o of ops) {
          if (o.kind === 'deposit') {
            assert.ok(!isLedgerError(await transfer(settlementId, wallets[o.to]!.id, o.amount)))
            model.posted[o.to]! += o.amount
          } else if (o.kind === 'move' || o.kind === 'reserve') {
            const pending = o.kind === 'reserve'
            const r = await transfer(
              wallets[o.from]!.id,
              wallets[o.to]!.id,
              o.amount,
              pending ? { pendingUntil: new Date(Date.now() + 600_000) } : {},
            )
            const covered =
              o.from !== o.to && model.posted[o.from]! - model.reserved[o.from]! >= o.amount
            assert.equal(!isLedgerError(r), covered)
            if (!isLedgerError(r)) {
              if (pending) {
                model.reserved[o.from]! += o.amount
                pendings.push({ id: r.id, from: o.from, to: o.to, amount: o.amount, open: true })
              } else {
                model.posted[o.from]! -= o.amount
                model.posted[o.to]! += o.amount
              }
            }
          } else {
            const p = pendings[o.which]
            if (!p?.open) continue
            if (o.kind === 'post') {
              const part = (p.amount * BigInt(o.fraction)) / 4n || 1n
              assert.ok(!isLedgerError(await tx((trx) => postTransfer(trx, p.id, part))))
              model.posted[p.from]! -= part
              model.posted[p.to]! += part
            } else {
              assert.ok(!isLedgerError(await tx((trx) => voidTransfer(trx, p.id))))
            }
            model.reserved[p.from]! -= p.amount
            p.open = false
          }
        }
        for (const [i, w] of wallets.entries()) {
          const acc = (await getAccount(db(), w.id))!
          assert.equal(acc.creditsPosted - acc.debitsPosted, model.posted[i])
          assert.equal(acc.debitsPending, model.reserved[i])
          assert.ok(available(acc) >= 0n)
        }
        await assertBooksBalanced()
      }),
      { numRuns: 40 },
    )
  })
})

describe('transfers at once (a local payment)', () => {
  test('a reservation posted at once, fee and delivery: all or none, checked in order', async () => {
    // An asset of its own: other tests count what this asset's fee account holds.
    const asset = await createAsset(db(), { code: 'ATO', scale: 2 })
    assert.ok(typeof asset !== 'string')
    const a = await createAccount(db(), asset.id, 'wallet')
    const b = await createAccount(db(), asset.id, 'wallet')
    const clearing = (await getAssetAccount(db(), asset.id, 'outgoing')).id
    const fees = (await getAssetAccount(db(), asset.id, 'fees')).id
    await transfer((await getSettlementAccount(db(), asset.id)).id, a.id, 100n)
    const payment = (id: string, debit: bigint) => [
      {
        id: `${id}:reserve`,
        debitAccountId: a.id,
        creditAccountId: clearing,
        amount: debit,
        pendingUntil: new Date(Date.now() + 60_000),
      },
      { id: `${id}:fee`, debitAccountId: clearing, creditAccountId: fees, amount: 1n },
      { id: `${id}:deliver`, debitAccountId: clearing, creditAccountId: b.id, amount: debit - 1n },
    ]
    const first = randomUUID()
    assert.equal(await tx((trx) => postAtOnce(trx, payment(first, 60n))), true)
    assert.equal(await balanceOf(a.id), 40n)
    assert.equal(await balanceOf(b.id), 59n)
    const [reserve] = await db()
      .selectFrom('ledger_transfers')
      .selectAll()
      .where('id', '=', `${first}:reserve`)
      .execute()
    // As a reservation made and then posted in full.
    assert.equal(reserve!.two_phase, true)
    assert.equal(reserve!.state, 'posted')
    assert.equal(reserve!.posted_amount, 60n)
    assert.ok(reserve!.resolved_at)
    expectError(await tx((trx) => voidTransfer(trx, `${first}:reserve`)), 'already_resolved')

    // More than the balance: refused, and nothing of the payment is written.
    const second = randomUUID()
    expectError(await tx((trx) => postAtOnce(trx, payment(second, 41n))), 'insufficient_balance')
    const written = await db()
      .selectFrom('ledger_transfers')
      .select('id')
      .where('id', 'like', `${second}:%`)
      .execute()
    assert.deepEqual(written, [])
    // An id that exists fails the statement (the caller made the ids: it is a bug).
    await assert.rejects(tx((trx) => postAtOnce(trx, payment(first, 10n))))
    assert.equal(await balanceOf(a.id), 40n)
    await assertBooksBalanced()
  })
})

describe('limit-free accounts', () => {
  test('are moved without a lock, appended as deltas, read with them, and folded exactly once', async () => {
    const clearing = (await getAssetAccount(db(), assetId, 'outgoing')).id
    const fees = (await getAssetAccount(db(), assetId, 'fees')).id
    const a = await wallet()
    assert.ok(!isLedgerError(await transfer(settlementId, a.id, 500n)))
    // A reservation into the clearing account, posted, then paid on to fees, as a payment does.
    const reservation = randomUUID()
    const held = await tx((trx) =>
      createTransfer(trx, {
        id: reservation,
        debitAccountId: a.id,
        creditAccountId: clearing,
        amount: 300n,
        pendingUntil: new Date(Date.now() + 60_000),
      }),
    )
    assert.ok(!isLedgerError(held))
    // While a transaction holds the clearing account's row, a transfer on it still goes through:
    // it never waits for that row.
    await tx(async (holder) => {
      await sql`SELECT 1 FROM ledger_accounts WHERE id = ${clearing} FOR NO KEY UPDATE`.execute(
        holder,
      )
      assert.ok(!isLedgerError(await tx((trx) => postTransfer(trx, reservation))))
      assert.ok(!isLedgerError(await transfer(clearing, fees, 300n)))
    })
    const deltas = async () =>
      Number(
        (
          await db()
            .selectFrom('ledger_account_deltas')
            .select((eb) => eb.fn.countAll<bigint>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      )
    assert.ok((await deltas()) > 0)
    const before = await getAccount(db(), fees)
    assert.equal(before!.creditsPosted, 300n)
    await assertBooksBalanced()

    // Two folds at once: each delta lands once, and the totals read the same after.
    const folded = (await Promise.all([foldDeltas(db()), foldDeltas(db())])).reduce((x, y) => x + y)
    assert.ok(folded > 0)
    assert.equal(await deltas(), 0)
    assert.deepEqual(await getAccount(db(), fees), before)
    const row = await db()
      .selectFrom('ledger_accounts')
      .select('credits_posted')
      .where('id', '=', fees)
      .executeTakeFirstOrThrow()
    assert.equal(row.credits_posted, 300n)
    await assertBooksBalanced()
  })

  test('an overdrawn clearing account is reported by the books check', async () => {
    const clearing = (await getAssetAccount(db(), assetId, 'outgoing')).id
    const a = await wallet()
    // Nothing stops this at transfer time (limit-free): the reconciliation must see it.
    assert.ok(!isLedgerError(await transfer(clearing, a.id, 1_000_000n)))
    const report = await checkBooks(db())
    assert.deepEqual(report.overdrawnAccounts, [clearing])
    assert.equal(report.balanced, false)
    // Put right, so that the other tests' books balance again.
    assert.ok(!isLedgerError(await transfer(a.id, clearing, 1_000_000n)))
    assert.deepEqual((await checkBooks(db())).overdrawnAccounts, [])
  })
})
