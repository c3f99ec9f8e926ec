/** JSON Schema fragments shared by the admin routes (and so by the admin OpenAPI document). */

export const uuid = { type: 'string', format: 'uuid' } as const

export const amount = {
  type: 'string',
  format: 'uint64',
  description: 'An amount in the asset’s smallest unit, as a decimal string (0 to 2^64-1).',
} as const

export const idParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: uuid },
} as const

export const pageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    first: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    cursor: { ...uuid, description: 'The `endCursor` of the previous page.' },
  },
} as const

export const errorResponse = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'description'],
      properties: {
        code: { type: 'string' },
        description: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
} as const

export const pageInfo = {
  type: 'object',
  required: ['hasNextPage'],
  properties: { hasNextPage: { type: 'boolean' }, endCursor: { type: 'string' } },
} as const

/** A ledger total or balance: numeric(39,0) can exceed uint64, and balances can be negative. */
export const total = { type: 'string', pattern: '^-?(0|[1-9][0-9]*)$' } as const

export const dateTime = { type: 'string', format: 'date-time' } as const

/** The query of an admin list: a page size, the cursor, and the list's own filters. */
export function listQuery(filters: Record<string, unknown>) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: { ...pageQuery.properties, ...filters },
  } as const
}

/** The body of an admin list. */
export function listOf(item: unknown) {
  return {
    type: 'object',
    required: ['items', 'pagination'],
    properties: { items: { type: 'array', items: item }, pagination: pageInfo },
  } as const
}

export const cancelBody = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: {
    reason: {
      type: 'string',
      minLength: 1,
      maxLength: 500,
      description: 'Why, for the record (shown to operators, not to Open Payments clients).',
    },
  },
} as const
