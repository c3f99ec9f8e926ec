import { sql } from 'kysely'
import { badRequest } from '../lib/errors.ts'

export interface PageQuery {
  first?: number
  last?: number
  cursor?: string
}

export interface PageInfo {
  hasNextPage: boolean
  hasPreviousPage: boolean
  startCursor?: string
  endCursor?: string
}

/** One fetch of the listed rows in `createdAt DESC, id DESC` order, relative to a cursor row. */
export type FetchPage<T> = (q: {
  /** Compared in the database (timestamps there are finer than a JS Date). */
  cursorId?: string
  /** `after`: rows following the cursor in list order; `before`: rows preceding it, nearest first. */
  direction: 'after' | 'before'
  limit: number
}) => Promise<T[]>

export const DEFAULT_PAGE_SIZE = 20

/**
 * Cursor pagination as the Open Payments spec and Rafiki define it: the cursor is a resource id,
 * `first` pages forward from it, `last` pages backward (and needs a cursor), results always come in
 * list order, and cursors are omitted on an empty page. Has-next/previous come from fetching one
 * row more than asked.
 */
export async function paginate<T extends { id: string }>(
  query: PageQuery,
  cursorExists: (id: string) => Promise<boolean>,
  fetch: FetchPage<T>,
): Promise<{ items: T[]; pageInfo: PageInfo }> {
  if (query.first !== undefined && query.last !== undefined) {
    throw badRequest('first and last are mutually exclusive')
  }
  if (query.last !== undefined && query.cursor === undefined)
    throw badRequest('last requires cursor')
  const cursorId = query.cursor
  if (cursorId !== undefined && !(await cursorExists(cursorId))) {
    throw badRequest('invalid cursor', { field: 'querystring.cursor' })
  }

  const backward = query.last !== undefined
  const size = query.last ?? query.first ?? DEFAULT_PAGE_SIZE
  const rows = await fetch({ cursorId, direction: backward ? 'before' : 'after', limit: size + 1 })
  const more = rows.length > size
  const page = rows.slice(0, size)
  const items = backward ? page.reverse() : page
  return {
    items,
    pageInfo: {
      // The cursor row itself lies on the other side of the page.
      hasNextPage: backward ? true : more,
      hasPreviousPage: backward ? more : cursorId !== undefined,
      ...(items.length > 0 && { startCursor: items[0]!.id, endCursor: items.at(-1)!.id }),
    },
  }
}

/** The query-string schema of every list endpoint (contract 1.5). */
export const listQuerySchema = {
  type: 'object',
  required: ['wallet-address'],
  properties: {
    'wallet-address': { type: 'string', format: 'uri' },
    cursor: { type: 'string', minLength: 1 },
    first: { type: 'integer', minimum: 1, maximum: 100 },
    last: { type: 'integer', minimum: 1, maximum: 100 },
  },
} as const

/**
 * The keyset condition (on `table` aliased `p`) and sort order of one fetch: rows after the cursor
 * row in list order (`created_at DESC, id DESC`), or before it, nearest first.
 */
export function keyset(
  table: 'incoming_payments' | 'outgoing_payments',
  cursorId: string | undefined,
  direction: 'after' | 'before',
) {
  const cursor = sql`(SELECT created_at, id FROM ${sql.table(table)} WHERE id = ${cursorId})`
  return {
    where:
      cursorId === undefined
        ? undefined
        : sql<boolean>`(p.created_at, p.id) ${sql.raw(direction === 'after' ? '<' : '>')} ${cursor}`,
    order: direction === 'after' ? ('desc' as const) : ('asc' as const),
  }
}
