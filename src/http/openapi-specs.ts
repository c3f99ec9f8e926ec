import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import $RefParser from '@apidevtools/json-schema-ref-parser'

export type Schema = Record<string, unknown>
export type SpecName = 'auth-server' | 'resource-server' | 'wallet-address-server'

const specsDir = join(
  dirname(createRequire(import.meta.url).resolve('@interledger/open-payments/package.json')),
  'dist/openapi/specs',
)

const cache = new Map<SpecName, Promise<Schema>>()

/**
 * The official Open Payments OpenAPI document (the version our client dependency ships), with every
 * `$ref` resolved. Request schemas are taken from it so validation follows the contract exactly.
 */
export function loadSpec(name: SpecName): Promise<Schema> {
  let spec = cache.get(name)
  if (!spec) {
    spec = $RefParser.dereference(join(specsDir, `${name}.yaml`)) as Promise<Schema>
    cache.set(name, spec)
  }
  return spec
}

export function componentSchema(spec: Schema, name: string): Schema {
  const schema = (spec.components as { schemas: Record<string, Schema> }).schemas[name]
  if (!schema) throw new Error(`no component schema ${name}`)
  return schema
}

/** The JSON request-body schema of an operation, as the spec declares it. */
export function requestBodySchema(spec: Schema, path: string, method: string): Schema {
  const op = (spec.paths as Record<string, Record<string, { requestBody?: Schema }>>)[path]?.[
    method
  ]
  const content = op?.requestBody?.content as Record<string, { schema: Schema }> | undefined
  const schema = content?.['application/json']?.schema
  if (!schema) throw new Error(`no request body schema for ${method.toUpperCase()} ${path}`)
  return schema
}

/** The JSON schema of an operation's response with `status`, as the spec declares it. */
export function responseSchema(spec: Schema, path: string, method: string, status: string): Schema {
  const op = (spec.paths as Record<string, Record<string, { responses?: Schema }>>)[path]?.[method]
  const response = op?.responses?.[status] as { content?: Record<string, { schema: Schema }> }
  const schema = response?.content?.['application/json']?.schema
  if (!schema) throw new Error(`no ${status} response schema for ${method.toUpperCase()} ${path}`)
  return schema
}
