import type { ErrorObject } from 'ajv'
import Ajv2020 from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'
import { isUint64String } from '../lib/amount.ts'

/** An Ajv 2020 instance with the standard formats and our strict `uint64`. */
export function createAjv(opts: { coerceTypes: boolean }): Ajv2020.default {
  const ajv = new Ajv2020.default({
    allErrors: false,
    coerceTypes: opts.coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    strict: false,
  })
  addFormats.default(ajv)
  ajv.addFormat('uint64', { type: 'string', validate: isUint64String })
  return ajv
}

/**
 * One pair per process, shared by every listener: Ajv keeps what it compiled by schema, so a schema
 * that several listeners (or servers in one process) use is compiled once.
 */
let shared: { strict: Ajv2020.default; coercing: Ajv2020.default } | undefined

/**
 * Bodies are validated as sent (no coercion: `"amount": 5` is an error, not "5"); query strings
 * and path parameters arrive as text and are coerced to the declared types.
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  shared ??= {
    strict: createAjv({ coerceTypes: false }),
    coercing: createAjv({ coerceTypes: true }),
  }
  const { strict, coercing } = shared
  return ({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema as object) as ReturnType<
      FastifySchemaCompiler<unknown>
    >
}

/** One readable sentence naming the offending field, e.g. `body.amount must be a uint64 string`. */
export function describeValidationError(
  context: string,
  e: ErrorObject,
): { field: string; message: string } {
  const path = [context, ...e.instancePath.split('/').filter(Boolean)]
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = [...path, e.params.additionalProperty].join('.')
      return { field, message: `${field} is not allowed` }
    }
    case 'required': {
      const field = [...path, e.params.missingProperty].join('.')
      return { field, message: `${field} is required` }
    }
    case 'format':
      return {
        field: path.join('.'),
        message: `${path.join('.')} must be a valid ${e.params.format}`,
      }
    default:
      return { field: path.join('.'), message: `${path.join('.')} ${e.message ?? 'is invalid'}` }
  }
}
