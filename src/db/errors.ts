/** PostgreSQL SQLSTATE of an error from either engine, if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

export const isUniqueViolation = (err: unknown) => sqlState(err) === '23505'

/** A unique violation of the constraint (or unique index) named `constraint`. */
export const isUniqueViolationOf = (err: unknown, constraint: string) =>
  isUniqueViolation(err) && (err as { constraint?: unknown }).constraint === constraint
