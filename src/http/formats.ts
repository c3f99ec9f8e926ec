import { fullFormats } from 'ajv-formats/dist/formats.js'
import { isUint64String } from '../lib/amount.ts'

/** Our strict `uint64`: a decimal string of an unsigned 64-bit integer. */
export const uint64Format = { type: 'string', validate: isUint64String } as const

const rfc3339 = fullFormats['date-time'] as {
  validate: (s: string) => boolean
  compare: (a: string, b: string) => number | undefined
}

/**
 * RFC 3339's `date-time` that is also a time a `Date` holds: ajv-formats accepts a leap second
 * (`23:59:60`), which `new Date` turns into an invalid date, so that a route would reach the
 * database with one.
 */
export const dateTimeFormat = {
  ...rfc3339,
  validate: (s: string) => rfc3339.validate(s) && !Number.isNaN(Date.parse(s)),
} as const

/**
 * Every string format a schema may name, as `createAjv` registers them: ajv-formats' full set, with
 * `date-time` as above, and `uint64`. The validators `npm run build` precompiles import their
 * formats from here.
 */
export const formats = { ...fullFormats, 'date-time': dateTimeFormat, uint64: uint64Format }
