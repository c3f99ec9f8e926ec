import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

export type Schema = Record<string, unknown>
export type SpecName = 'auth-server' | 'resource-server' | 'wallet-address-server'

const specsDir = join(
  dirname(createRequire(import.meta.url).resolve('@interledger/open-payments/package.json')),
  'dist/openapi/specs',
)

export const SPEC_NAMES: readonly SpecName[] = [
  'auth-server',
  'resource-server',
  'wallet-address-server',
]

/**
 * Where `npm run build` leaves each spec dereferenced, as JSON, beside the bundled code
 * (`dist/openapi-specs`, see `write-specs.ts`): parsing the YAML is most of what loading a spec
 * costs at start. Run from source, this directory does not exist and the YAML is read instead.
 */
const prebuiltSpecPath = (name: SpecName) =>
  join(import.meta.dirname, 'openapi-specs', `${name}.json`)

const cache = new Map<SpecName, Promise<Schema>>()

/**
 * The official Open Payments OpenAPI document (the version our client dependency ships), with every
 * `$ref` resolved. Request schemas are taken from it so validation follows the contract exactly.
 * Loaded once per process.
 */
export function loadSpec(name: SpecName): Promise<Schema> {
  let spec = cache.get(name)
  if (!spec) {
    const prebuilt = prebuiltSpecPath(name)
    spec = existsSync(prebuilt)
      ? Promise.resolve(JSON.parse(readFileSync(prebuilt, 'utf8')) as Schema)
      : dereferenceSpec(name)
    cache.set(name, spec)
  }
  return spec
}

/** The spec read from the dependency's YAML, every `$ref` resolved (run from source, and by the build). */
export async function dereferenceSpec(name: SpecName): Promise<Schema> {
  const { default: $RefParser } = await import('@apidevtools/json-schema-ref-parser')
  return (await $RefParser.dereference(join(specsDir, `${name}.yaml`))) as Schema
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
