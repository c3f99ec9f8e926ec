import { fullFormats } from 'ajv-formats/dist/formats.js'
import { isUint64String } from '../lib/amount.ts'

/** Our strict `uint64`: a decimal string of an unsigned 64-bit integer. */
export const uint64Format = { type: 'string', validate: isUint64String } as const

/**
 * Every string format a schema may name, as `createAjv` registers them: ajv-formats' full set and
 * `uint64`. The validators `npm run build` precompiles import their formats from here.
 */
export const formats = { ...fullFormats, uint64: uint64Format }
