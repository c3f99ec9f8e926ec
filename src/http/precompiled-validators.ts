import type { ValidateFunction } from 'ajv'

/**
 * Validators compiled by `npm run build`, by `validatorKey` of their schema: `scripts/build.ts`
 * replaces this module in the bundle with Ajv's standalone code for every schema the routes
 * declare, so that the built server compiles none at start. Run from source, both are empty and
 * every schema is compiled at start.
 */
type Precompiled = Readonly<Record<string, ValidateFunction | undefined>>

/** Bodies: validated as sent, no coercion. */
export const strict: Precompiled = {}
/** Query strings, path parameters and headers: coerced to the declared types. */
export const coercing: Precompiled = {}
