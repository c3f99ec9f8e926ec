import fastJson from 'fast-json-stringify'
import type { FastifySerializerCompiler } from 'fastify'
import { serializers as precompiled } from './precompiled-serializers.ts'
import { schemaKey } from './validation.ts'

/** The response schemas the compiler was asked for, while the build records them. */
let recorded: Map<string, object> | undefined

/** From now on, remember every response schema by key (for the build, as `recordSchemas`). */
export function recordResponseSchemas(): Map<string, object> {
  recorded = new Map()
  return recorded
}

/**
 * Fastify's own serializer compiler (fast-json-stringify with its default options, as Fastify
 * calls it when no shared schemas are added), except that a serializer the build precompiled for
 * the same schema is used as is.
 */
export function createSerializerCompiler(): FastifySerializerCompiler<unknown> {
  return ({ schema }) => {
    const key = schemaKey(schema)
    recorded?.set(key, schema as object)
    return precompiled[key] ?? fastJson(schema as fastJson.AnySchema)
  }
}
