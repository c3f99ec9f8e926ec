import type { FastifyInstance } from 'fastify'
import { badRequest } from '../lib/errors.ts'

/** Deeper than any document of ours; deep enough input would exhaust a stack later (here, or in jsonb). */
export const MAX_DEPTH = 32

/**
 * Refuses, before validation and any handler, request values that PostgreSQL cannot store or that
 * would exhaust a stack further on: a string with NUL (`text` and `jsonb` refuse `\u0000`) or a
 * lone UTF-16 surrogate (`jsonb` refuses its escape), and JSON nested deeper than `MAX_DEPTH`.
 * One check for every listener, every route, body, query string and path, so no handler has to
 * remember it; the 400 names the offending field in the listener's error envelope.
 */
export function guardInput(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    for (const [part, value] of [
      ['params', req.params],
      ['querystring', req.query],
      ['body', req.body],
    ] as const) {
      const problem = findUnstorable(value)
      if (problem) {
        const field = [part, ...problem.path].join('.')
        throw badRequest(`${field} ${problem.reason}`, { field })
      }
    }
  })
}

interface Problem {
  path: string[]
  reason: string
}

/** The first unstorable value in a parsed document, walked without recursion (it may be deep). */
export function findUnstorable(root: unknown): Problem | undefined {
  if (Buffer.isBuffer(root)) return undefined
  const stack: { value: unknown; path: string[] }[] = [{ value: root, path: [] }]
  while (stack.length > 0) {
    const { value, path } = stack.pop()!
    if (typeof value === 'string') {
      const reason = unstorable(value)
      if (reason) return { path, reason }
      continue
    }
    if (typeof value !== 'object' || value === null) continue
    if (path.length >= MAX_DEPTH) return { path, reason: `is nested deeper than ${MAX_DEPTH}` }
    for (const [key, child] of Object.entries(value)) {
      const reason = unstorable(key)
      if (reason) return { path, reason: `has a key that ${reason}` }
      stack.push({ value: child, path: [...path, key] })
    }
  }
  return undefined
}

// With the `u` flag a paired surrogate is one code point, so this matches only unpaired halves.
const LONE_SURROGATE = /\p{Cs}/u

function unstorable(s: string): string | undefined {
  if (s.includes('\u0000')) return 'must not contain NUL characters'
  if (LONE_SURROGATE.test(s)) return 'must not contain unpaired UTF-16 surrogates'
  return undefined
}
