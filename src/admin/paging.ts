import { badRequest } from '../lib/errors.ts'
import type { FetchPage } from '../resource-server/pagination.ts'

export interface PageRequest {
  first: number
  cursor?: string
}

/**
 * One page of an admin list, newest first: `first` items after the cursor (the `endCursor` of the
 * previous page). A cursor naming nothing is a 400, not an empty page.
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
