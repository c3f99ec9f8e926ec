/**
 * For the build: the standalone source of every validator (Ajv) and response serializer
 * (fast-json-stringify) the server's routes ask for, so that the bundled server loads them instead
 * of compiling schemas at start (`http/validation.ts`, `http/serialization.ts`). The routes are
 * learnt by creating every listener once, on a database that is never reached.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { _ } from 'ajv'
import standaloneCode from 'ajv/dist/standalone/index.js'
import fastJson from 'fast-json-stringify'
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely'
import { pino } from 'pino'
import { loadConfig } from '../src/config.ts'
import type { DB } from '../src/db/schema.ts'
import { recordResponseSchemas } from '../src/http/serialization.ts'
import { createAjv, recordSchemas, type ValidatorKind } from '../src/http/validation.ts'
import { createDeps, createServer } from '../src/server.ts'

export interface Precompiled {
  /** One ES module per kind, exporting a validator per schema key. */
  validators: Record<ValidatorKind, string>
  /** One CommonJS module per schema key, exporting its serializer. */
  serializers: Record<string, string>
}

export async function precompile(): Promise<Precompiled> {
  const schemas = recordSchemas()
  const responses = recordResponseSchemas()
  const dataDir = mkdtempSync(join(tmpdir(), 'op-build-'))
  try {
    // Defaults, every role: a schema that depends on settings and differs at run time is compiled
    // at start, as before.
    const config = loadConfig({ DATA_DIR: dataDir })
    const db = new Kysely<DB>({
      dialect: {
        createAdapter: () => new PostgresAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (k) => new PostgresIntrospector(k),
        createQueryCompiler: () => new PostgresQueryCompiler(),
      },
    })
    const server = await createServer(createDeps({ config, db, logger: pino({ level: 'silent' }) }))
    // Fastify compiles the routes' validators and serializers when an instance becomes ready.
    for (const l of server.listeners) await l.app.ready()
    await server.stop()
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
  const source = (kind: ValidatorKind) => {
    const ajv = createAjv({
      coerceTypes: kind === 'coercing',
      // The generated module imports the formats from beside `validation.ts`.
      code: { source: true, esm: true, formats: _`require("./formats.ts").formats` },
    })
    const names: Record<string, string> = {}
    for (const [key, schema] of schemas[kind]) {
      ajv.addSchema(schema, key)
      names[key] = key
    }
    return standaloneCode.default(ajv, names)
  }
  const serializers: Record<string, string> = {}
  for (const [key, schema] of responses) {
    // Validators that anyOf/oneOf need are inlined too, so that none is compiled at start.
    serializers[key] = fastJson(schema as fastJson.AnySchema, {
      mode: 'standalone',
      inlineValidators: true,
    })
  }
  return { validators: { strict: source('strict'), coercing: source('coercing') }, serializers }
}
