import { createHash } from 'node:crypto'
import type { CodeOptions, ErrorObject } from 'ajv'
import Ajv2020 from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'
import { dateTimeFormat, uint64Format } from './formats.ts'
import { coercing, strict } from './precompiled-validators.ts'

/**
 * An Ajv 2020 instance with the standard formats, `date-time` only as a `Date` holds it, and our
 * strict `uint64` (as `formats` lists them). `code` is for the build, which has Ajv write the
 * compiled validators out as source.
 */
export function createAjv(opts: { coerceTypes: boolean; code?: CodeOptions }): Ajv2020.default {
  const ajv = new Ajv2020.default({
    allErrors: false,
    coerceTypes: opts.coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    strict: false,
    ...(opts.code && { code: opts.code }),
  })
  addFormats.default(ajv)
  ajv.addFormat('date-time', dateTimeFormat)
  ajv.addFormat('uint64', uint64Format)
  return ajv
}

export type ValidatorKind = 'strict' | 'coercing'

const precompiled = { strict, coercing }

/** Which Ajv validates a part of the request: bodies strictly, the rest coerced from text. */
const kindOf = (httpPart: string | undefined): ValidatorKind =>
  httpPart === 'body' ? 'strict' : 'coercing'

/**
 * A schema's name among the precompiled validators and serializers: a hash of its JSON (route
 * schemas are plain JSON), usable as an identifier.
 */
export function schemaKey(schema: unknown): string {
  return `v_${createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 32)}`
}

/**
 * One pair per process, shared by every listener: Ajv keeps what it compiled by schema, so a schema
 * that several listeners (or servers in one process) use is compiled once.
 */
let shared: Record<ValidatorKind, Ajv2020.default> | undefined

/** The schemas the compilers were asked for, while the build records them. */
let recorded: Record<ValidatorKind, Map<string, object>> | undefined

/**
 * From now on, remember every schema a validator compiler is asked for, by kind and key: the build
 * creates every listener once to learn which validators to precompile.
 */
export function recordSchemas(): Record<ValidatorKind, Map<string, object>> {
  recorded = { strict: new Map(), coercing: new Map() }
  return recorded
}

/**
 * Bodies are validated as sent (no coercion: `"amount": 5` is an error, not "5"); query strings
 * and path parameters arrive as text and are coerced to the declared types. A validator the build
 * precompiled for the same schema (same JSON) is used as is; any other schema is compiled here.
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  shared ??= {
    strict: createAjv({ coerceTypes: false }),
    coercing: createAjv({ coerceTypes: true }),
  }
  const ajv = shared
  return ({ schema, httpPart }) => {
    const kind = kindOf(httpPart)
    const key = schemaKey(schema)
    recorded?.[kind].set(key, schema as object)
    return (precompiled[kind][key] ?? ajv[kind].compile(schema as object)) as ReturnType<
      FastifySchemaCompiler<unknown>
    >
  }
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
