import { randomUUID } from 'node:crypto'
import type { Selectable } from 'kysely'
import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import { isUniqueViolation } from '../db/errors.ts'
import type { PeersTable } from '../db/schema.ts'
import { createAccount, getAccount } from '../ledger/accounts.ts'
import { hashToken } from '../lib/secrets.ts'
import { peerTokenCache } from './token-cache.ts'

export interface Peer {
  id: string
  name: string
  assetId: string
  assetCode: string
  assetScale: number
  ilpAddress: string
  httpEndpoint: string
  outgoingToken: string
  maxPacketAmount: bigint | null
  ledgerAccountId: string
  routes: string[]
  createdAt: Date
}

export interface NewPeer {
  name: string
  assetCode: string
  assetScale: number
  ilpAddress: string
  /** Address prefixes routed to the peer; its own address when none are given. */
  routes?: string[]
  httpEndpoint: string
  outgoingToken: string
  incomingTokens: string[]
  maxPacketAmount?: bigint
  /** How much the peer may owe us for packets it sent before settling; none: no credit. */
  creditLimit?: bigint
}

export type PeerError = 'unknown_asset' | 'duplicate'

/** Creates a peer with its ledger account (whose debit limit is the peer's credit line). */
export async function createPeer(db: Db, input: NewPeer): Promise<Peer | PeerError> {
  try {
    return await db.transaction().execute(async (trx) => {
      const asset = await trx
        .selectFrom('assets')
        .select('id')
        .where('code', '=', input.assetCode)
        .where('scale', '=', input.assetScale)
        .executeTakeFirst()
      if (!asset) return 'unknown_asset' as const
      const account = await createAccount(trx, asset.id, 'peer', {
        debitLimit: input.creditLimit ?? 0n,
      })
      const id = randomUUID()
      await trx
        .insertInto('peers')
        .values({
          id,
          name: input.name,
          asset_id: asset.id,
          ilp_address: input.ilpAddress,
          http_endpoint: input.httpEndpoint,
          outgoing_token: input.outgoingToken,
          max_packet_amount: input.maxPacketAmount ?? null,
          ledger_account_id: account.id,
        })
        .execute()
      for (const token of input.incomingTokens) {
        await trx
          .insertInto('peer_incoming_tokens')
          .values({ token_hash: hashToken(token), peer_id: id })
          .execute()
      }
      for (const prefix of input.routes ?? [input.ilpAddress]) {
        await trx.insertInto('peer_routes').values({ prefix, peer_id: id }).execute()
      }
      return (await getPeer(trx, { id }))!
    })
  } catch (err) {
    if (isUniqueViolation(err)) return 'duplicate'
    throw err
  }
}

export async function getPeer(
  db: Db,
  by: { id: string } | { name: string },
): Promise<Peer | undefined> {
  let q = selectPeers(db)
  q = 'id' in by ? q.where('p.id', '=', by.id) : q.where('p.name', '=', by.name)
  const row = await q.executeTakeFirst()
  return row && toPeer(row, await routesOf(db, row.id))
}

/** Where the two ASEs stand, from the peer's ledger account. */
export interface PeerPosition {
  /** Credits less debits posted: positive when we owe the peer, negative when it owes us. */
  balance: bigint
  /** Forwarded packets still out: reserved towards the peer, and from it. */
  pendingToPeer: bigint
  pendingFromPeer: bigint
  /** How much the peer may owe us (its account's debit limit). */
  creditLimit: bigint
}

export async function peerPosition(db: Db, peer: Peer): Promise<PeerPosition> {
  const account = (await getAccount(db, peer.ledgerAccountId))!
  return {
    balance: account.creditsPosted - account.debitsPosted,
    pendingToPeer: account.creditsPending,
    pendingFromPeer: account.debitsPending,
    creditLimit: account.debitLimit ?? 0n,
  }
}

export async function listPeers(db: Db): Promise<Peer[]> {
  const rows = await selectPeers(db).orderBy('p.name').execute()
  return Promise.all(rows.map(async (r) => toPeer(r, await routesOf(db, r.id))))
}

/** The peer presenting this bearer token on our ILP-over-HTTP endpoint. */
export async function peerByIncomingToken(db: Db, token: string): Promise<Peer | undefined> {
  const row = await selectPeers(db)
    .innerJoin('peer_incoming_tokens as t', 't.peer_id', 'p.id')
    .where('t.token_hash', '=', hashToken(token))
    .executeTakeFirst()
  return row && toPeer(row, [])
}

/** The peer whose route is the longest prefix of `destination` (prefix equal or followed by a dot). */
export async function peerForDestination(db: Db, destination: string): Promise<Peer | undefined> {
  const row = await selectPeers(db)
    .innerJoin('peer_routes as r', 'r.peer_id', 'p.id')
    .where((eb) =>
      eb.or([
        eb('r.prefix', '=', destination),
        eb(
          sql<string>`${destination}`,
          'like',
          sql<string>`replace(replace(r.prefix, '_', '\\_'), '%', '\\%') || '.%'`,
        ),
      ]),
    )
    .orderBy(sql`length(r.prefix)`, 'desc')
    .limit(1)
    .executeTakeFirst()
  return row && toPeer(row, [])
}

/** The query of which of these peers exist (rows of `id`), for the caller's statement. */
export const existingPeersSql = (ids: string[]) =>
  sql<{ id: string }>`SELECT id::text AS id FROM peers WHERE id IN (${sql.join(ids)})`

export async function deletePeer(db: Db, id: string): Promise<boolean> {
  const r = await db.deleteFrom('peers').where('id', '=', id).executeTakeFirst()
  peerTokenCache(db).clear()
  return r.numDeletedRows > 0n
}

function selectPeers(db: Db) {
  return db
    .selectFrom('peers as p')
    .innerJoin('assets as a', 'a.id', 'p.asset_id')
    .select([
      'p.id',
      'p.name',
      'p.asset_id',
      'a.code',
      'a.scale',
      'p.ilp_address',
      'p.http_endpoint',
      'p.outgoing_token',
      'p.max_packet_amount',
      'p.ledger_account_id',
      'p.created_at',
    ])
}

async function routesOf(db: Db, peerId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('peer_routes')
    .select('prefix')
    .where('peer_id', '=', peerId)
    .orderBy('prefix')
    .execute()
  return rows.map((r) => r.prefix)
}

type Row = Omit<Selectable<PeersTable>, 'asset_id'> & {
  asset_id: string
  code: string
  scale: number
}

function toPeer(r: Row, routes: string[]): Peer {
  return {
    id: r.id,
    name: r.name,
    assetId: r.asset_id,
    assetCode: r.code,
    assetScale: r.scale,
    ilpAddress: r.ilp_address,
    httpEndpoint: r.http_endpoint,
    outgoingToken: r.outgoing_token,
    maxPacketAmount: r.max_packet_amount,
    ledgerAccountId: r.ledger_account_id,
    routes,
    createdAt: r.created_at,
  }
}

/** A credit limit refused because the peer owes more than it now. */
export interface CreditLimitBelowOwed {
  error: 'credit_limit_below_owed'
  /** What the peer owes now: debits posted and pending less credits posted. */
  owed: bigint
}

/**
 * Changes how we reach a peer and how much we let it owe; undefined fields stay as they are. A
 * credit limit below what the peer owes now is refused (the database holds every peer within its
 * line), and then nothing of the patch is applied.
 */
export async function updatePeer(
  db: Db,
  id: string,
  patch: {
    httpEndpoint?: string
    outgoingToken?: string
    maxPacketAmount?: bigint | null
    creditLimit?: bigint
  },
): Promise<Peer | CreditLimitBelowOwed | undefined> {
  const updated = await db.transaction().execute(async (trx) => {
    const peer = await getPeer(trx, { id })
    if (!peer) return undefined
    if (patch.creditLimit !== undefined) {
      // First, so that a refusal leaves everything as it was. The condition is checked on the
      // locked row, against the transfers committed before it (peer accounts are never limit-free).
      const limit = patch.creditLimit
      const set = await trx
        .updateTable('ledger_accounts')
        .set({ debit_limit: limit })
        .where('id', '=', peer.ledgerAccountId)
        .where(sql<boolean>`debits_posted + debits_pending - credits_posted <= ${limit}`)
        .returning('id')
        .executeTakeFirst()
      if (!set) {
        const { owed } = await trx
          .selectFrom('ledger_accounts')
          .select(sql<bigint>`debits_posted + debits_pending - credits_posted`.as('owed'))
          .where('id', '=', peer.ledgerAccountId)
          .executeTakeFirstOrThrow()
        return { error: 'credit_limit_below_owed', owed: BigInt(owed) } as const
      }
    }
    const set = {
      ...(patch.httpEndpoint !== undefined && { http_endpoint: patch.httpEndpoint }),
      ...(patch.outgoingToken !== undefined && { outgoing_token: patch.outgoingToken }),
      ...(patch.maxPacketAmount !== undefined && { max_packet_amount: patch.maxPacketAmount }),
    }
    if (Object.keys(set).length > 0)
      await trx.updateTable('peers').set(set).where('id', '=', id).execute()
    return getPeer(trx, { id })
  })
  // The ILP listener of this process sees the change at once (others within the cache's bound).
  peerTokenCache(db).clear()
  return updated
}
