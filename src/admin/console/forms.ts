import type { FastifyRequest } from 'fastify'

/** Ids in console paths and queries are UUIDs, like the API's: anything else is a 400 page. */
export const uuid = { type: 'string', format: 'uuid' } as const

export const idParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: uuid },
} as const

/** The schema of a url-encoded form: string fields, bounded. */
export const form = (fields: string[], required: string[] = []) => ({
  type: 'object',
  required,
  properties: Object.fromEntries(fields.map((k) => [k, { type: 'string', maxLength: 2000 }])),
})

/** A console path to return to after a form: only this console's own pages, never elsewhere. */
const CONSOLE_PATH = /^\/console(\/[A-Za-z0-9-]+)*\/?(\?[A-Za-z0-9=&_-]*)?$/

export const consolePath = (value: unknown) =>
  typeof value === 'string' && CONSOLE_PATH.test(value) ? value : '/console'

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
