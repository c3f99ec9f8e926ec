import type { FastifyInstance } from 'fastify'
import type { Db } from '../db/database.ts'
import { badRequest, notFound } from '../lib/errors.ts'
import type { FetchPage } from '../resource-server/pagination.ts'
import { getWalletAddress } from '../wallet-addresses/service.ts'
import { errorResponse, listOf, listQuery, uuid } from './schemas.ts'

export interface PageRequest {
  first: number
  cursor?: string
}

/**
 * One page of an admin list, in the list's order (`fetch`'s): `first` items after the cursor (the
 * `endCursor` of the previous page). A cursor naming nothing is a 400, not an empty page.
 */
export async function adminPage<T extends { id: string }>(
  query: PageRequest,
  cursorExists: (id: string) => Promise<boolean>,
  fetch: FetchPage<T>,
): Promise<{ items: T[]; pagination: { hasNextPage: boolean; endCursor?: string } }> {
  if (query.cursor !== undefined && !(await cursorExists(query.cursor)))
    throw badRequest('querystring.cursor names nothing in this list', {
      field: 'querystring.cursor',
    })
  const rows = await fetch({ cursorId: query.cursor, direction: 'after', limit: query.first + 1 })
  const items = rows.slice(0, query.first)
  return {
    items,
    pagination: {
      hasNextPage: rows.length > query.first,
      ...(items.length > 0 && { endCursor: items.at(-1)!.id }),
    },
  }
}

/**
 * `GET <path>`: an admin list of payments, newest first, of one wallet address (404 when there is
 * no such wallet address) or of all, optionally in one state.
 */
export function paymentListRoute<T extends { id: string }, S extends string>(
  app: FastifyInstance,
  db: Db,
  opts: {
    path: string
    /** What the list holds, plural ("incoming payments"): its summary and tag. */
    noun: string
    states: readonly S[]
    itemSchema: unknown
    exists: (id: string) => Promise<boolean>
    pages: (filter: { walletAddressId?: string; state?: S }) => FetchPage<T>
    render: (items: T[]) => unknown[] | Promise<unknown[]>
  },
): void {
  app.get<{ Querystring: PageRequest & { walletAddressId?: string; state?: S } }>(
    opts.path,
    {
      schema: {
        summary: `List ${opts.noun}, newest first`,
        description: 'Of one wallet address or of all, optionally in one state.',
        tags: [opts.noun],
        querystring: listQuery({ walletAddressId: uuid, state: { enum: opts.states } }),
        response: { 200: listOf(opts.itemSchema), 404: errorResponse },
      },
    },
    async (req) => {
      const { walletAddressId, state } = req.query
      if (walletAddressId && !(await getWalletAddress(db, { id: walletAddressId })))
        throw notFound('wallet address not found')
      const page = await adminPage(req.query, opts.exists, opts.pages({ walletAddressId, state }))
      return { items: await opts.render(page.items), pagination: page.pagination }
    },
  )
}
