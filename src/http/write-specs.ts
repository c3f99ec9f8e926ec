/**
 * Run by `npm run build` (`scripts/build.ts`): writes each official spec, dereferenced, as JSON
 * into `dir`, where the bundled `loadSpec` looks first, so that a production process never parses
 * YAML.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dereferenceSpec, SPEC_NAMES } from './openapi-specs.ts'

export async function writeSpecs(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true })
  for (const name of SPEC_NAMES) {
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(await dereferenceSpec(name)))
  }
}
