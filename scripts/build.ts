/**
 * `npm run build`: the production server as one ES module, `dist/main.js`, with what it reads at
 * run time beside it. Start-up was mostly module loading (hundreds of files, each resolved, read
 * and compiled); one file loads in a fraction of that time. Type checking is `tsc` (run first by
 * `npm run build`); esbuild only strips types and bundles.
 *
 * dist/
 *   main.js (+ chunk-*.js: code only some processes import, loaded on first use)
 *   migrations/      the SQL migrations (`db/migrate.ts` looks beside the code)
 *   openapi-specs/   the official specs, dereferenced, as JSON (`http/openapi-specs.ts`)
 */
import { cpSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { build, type Plugin } from 'esbuild'
import type { ValidatorKind } from '../src/http/validation.ts'
import { writeSpecs } from '../src/http/write-specs.ts'
import { type Precompiled, precompile } from './precompile.ts'

const root = join(import.meta.dirname, '..')
const dist = join(root, 'dist')

/**
 * Puts the validators and serializers compiled here in place of the empty
 * `http/precompiled-validators.ts` and `http/precompiled-serializers.ts`: Ajv and
 * fast-json-stringify compiling the route schemas was the largest part of start-up after module
 * loading. The generated code requires its libraries' runtime helpers and `./formats.ts`,
 * resolved from src/http.
 */
function precompiled({ validators, serializers }: Precompiled): Plugin {
  const httpDir = join(root, 'src/http')
  const module = (contents: string) => ({ contents, loader: 'js' as const, resolveDir: httpDir })
  const keys = Object.keys(serializers)
  return {
    name: 'precompiled',
    setup(b) {
      b.onLoad({ filter: /[/\\]src[/\\]http[/\\]precompiled-validators\.ts$/ }, () =>
        module(
          Object.keys(validators)
            .map((kind) => `export * as ${kind} from 'precompiled-validators:${kind}'`)
            .join('\n'),
        ),
      )
      b.onLoad({ filter: /[/\\]src[/\\]http[/\\]precompiled-serializers\.ts$/ }, () =>
        module(
          [
            ...keys.map((key) => `import ${key} from 'precompiled-serializers:${key}'`),
            `export const serializers = { ${keys.join(', ')} }`,
          ].join('\n'),
        ),
      )
      b.onResolve({ filter: /^precompiled-(validators|serializers):/ }, (args) => {
        const [namespace, path] = args.path.split(':') as [string, string]
        return { namespace, path }
      })
      b.onLoad({ filter: /.*/, namespace: 'precompiled-validators' }, (args) =>
        module(validators[args.path as ValidatorKind]),
      )
      b.onLoad({ filter: /.*/, namespace: 'precompiled-serializers' }, (args) =>
        module(serializers[args.path]!),
      )
    },
  }
}

const code = await precompile()
rmSync(dist, { recursive: true, force: true })
await build({
  entryPoints: [join(root, 'src/main.ts')],
  outdir: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  sourcemap: true,
  chunkNames: 'chunk-[hash]',
  logLevel: 'warning',
  plugins: [precompiled(code)],
  external: [
    // WebAssembly and data files found beside its own code; only the embedded database uses it.
    '@electric-sql/pglite',
    // `ilp/stream-receiver.ts` configures the `debug` instance ilp-logger requires at run time:
    // a bundled copy would be another instance.
    'debug',
    // A native addon, loaded from its own package directory (its prebuilt binaries).
    'sodium-native',
  ],
  // The bundled CommonJS packages call `require` and read `__dirname`, which an ES module lacks.
  banner: {
    js: [
      "import { createRequire as __createRequire } from 'node:module'",
      "import { dirname as __pathDirname } from 'node:path'",
      "import { fileURLToPath as __fileURLToPath } from 'node:url'",
      'const require = __createRequire(import.meta.url)',
      'const __filename = __fileURLToPath(import.meta.url)',
      'const __dirname = __pathDirname(__filename)',
    ].join('\n'),
  },
})
cpSync(join(root, 'src/db/migrations'), join(dist, 'migrations'), { recursive: true })
await writeSpecs(join(dist, 'openapi-specs'))
