/**
 * For the build: Ajv's standalone source of every validator the server's routes ask for, so that
 * the bundled server loads them instead of compiling schemas at start (`http/validation.ts`).
 * The routes are learnt by creating every listener once, on a database that is never reached.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { _ } from 'ajv'
import standaloneCode from 'ajv/dist/standalone/index.js'
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
import { createAjv, recordSchemas, type ValidatorKind } from '../src/http/validation.ts'
import { createDeps, createServer } from '../src/server.ts'

export async function precompiledValidators(): Promise<Record<ValidatorKind, string>> {
  const schemas = recordSchemas()
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
    // Fastify compiles the routes' validators when an instance becomes ready.
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
  return { strict: source('strict'), coercing: source('coercing') }
}
