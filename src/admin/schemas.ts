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
