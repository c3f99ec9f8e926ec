import { amount, dateTime, total, uuid } from '../admin/schemas.ts'
import type { TransferRecord } from './history.ts'
import type { Account } from './types.ts'

/** How the admin API shows ledger transfers and accounts (shared by the routes that show them). */
export const transferSchema = {
  type: 'object',
  required: [
    'id',
    'seq',
    'debitAccountId',
    'creditAccountId',
    'assetId',
    'amount',
    'state',
    'createdAt',
  ],
  properties: {
    id: { type: 'string', description: 'The id its booker gave it (its idempotency key).' },
    seq: { type: 'string', description: 'Position in the ledger’s history.' },
    debitAccountId: uuid,
    creditAccountId: uuid,
    assetId: uuid,
    amount,
    state: { type: 'string', enum: ['pending', 'posted', 'voided', 'expired'] },
    postedAmount: amount,
    expiresAt: dateTime,
    resolvedAt: dateTime,
    reference: { type: 'string' },
    createdAt: dateTime,
  },
} as const

export const transferJson = (t: TransferRecord) => ({
  id: t.id,
  seq: t.seq.toString(),
  debitAccountId: t.debitAccountId,
  creditAccountId: t.creditAccountId,
  assetId: t.assetId,
  amount: t.amount.toString(),
  state: t.state,
  ...(t.postedAmount !== null && { postedAmount: t.postedAmount.toString() }),
  ...(t.expiresAt && { expiresAt: t.expiresAt.toISOString() }),
  ...(t.resolvedAt && { resolvedAt: t.resolvedAt.toISOString() }),
  ...(t.reference !== null && { reference: t.reference }),
  createdAt: t.createdAt.toISOString(),
})

export const accountSchema = {
  type: 'object',
  required: [
    'id',
    'assetId',
    'kind',
    'debitsPosted',
    'creditsPosted',
    'debitsPending',
    'creditsPending',
    'balance',
  ],
  properties: {
    id: uuid,
    assetId: uuid,
    kind: {
      type: 'string',
      enum: ['settlement', 'wallet', 'incoming', 'outgoing', 'peer', 'fees'],
    },
    debitsPosted: total,
    creditsPosted: total,
    debitsPending: total,
    creditsPending: total,
    balance: { ...total, description: 'Posted credits less posted debits (may be negative).' },
    debitLimit: {
      ...total,
      description: 'How far debits may exceed credits (a peer’s credit line).',
    },
  },
} as const

export const accountJson = (a: Account) => ({
  id: a.id,
  assetId: a.assetId,
  kind: a.kind,
  debitsPosted: a.debitsPosted.toString(),
  creditsPosted: a.creditsPosted.toString(),
  debitsPending: a.debitsPending.toString(),
  creditsPending: a.creditsPending.toString(),
  balance: (a.creditsPosted - a.debitsPosted).toString(),
  ...(a.debitLimit !== null && { debitLimit: a.debitLimit.toString() }),
})
