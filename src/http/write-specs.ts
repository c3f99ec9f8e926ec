/**
 * Run by `npm run build` from dist/: writes each official spec, dereferenced, as JSON where the
 * compiled `loadSpec` looks first, so that a production process never parses YAML.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { dereferenceSpec, prebuiltSpecPath, SPEC_NAMES } from './openapi-specs.ts'

for (const name of SPEC_NAMES) {
  const path = prebuiltSpecPath(name)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, JSON.stringify(await dereferenceSpec(name)))
}
