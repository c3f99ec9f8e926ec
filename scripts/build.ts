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
import { writeSpecs } from '../src/http/write-specs.ts'
import { precompiledValidators } from './precompile-validators.ts'

const root = join(import.meta.dirname, '..')
const dist = join(root, 'dist')

/**
 * Puts the validators compiled here in place of the empty `http/precompiled-validators.ts`: Ajv
 * compiling the route schemas was the largest part of start-up after module loading.
 */
function precompiled(sources: Record<string, string>): Plugin {
  const httpDir = join(root, 'src/http')
  return {
    name: 'precompiled-validators',
    setup(b) {
      b.onLoad({ filter: /[/\\]src[/\\]http[/\\]precompiled-validators\.ts$/ }, () => ({
        contents: Object.keys(sources)
          .map((kind) => `export * as ${kind} from 'precompiled:${kind}'`)
          .join('\n'),
        loader: 'js',
        resolveDir: httpDir,
      }))
      b.onResolve({ filter: /^precompiled:/ }, (args) => ({
        path: args.path.slice('precompiled:'.length),
        namespace: 'precompiled',
      }))
      // Ajv's code requires its runtime helpers and `./formats.ts`, resolved from src/http.
      b.onLoad({ filter: /.*/, namespace: 'precompiled' }, (args) => ({
        contents: sources[args.path],
        loader: 'js',
        resolveDir: httpDir,
      }))
    },
  }
}

const validators = await precompiledValidators()
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
  plugins: [precompiled(validators)],
  external: [
    // WebAssembly and data files found beside its own code; only the embedded database uses it.
    '@electric-sql/pglite',
    // `ilp/stream-receiver.ts` configures the `debug` instance ilp-logger requires at run time:
    // a bundled copy would be another instance.
    'debug',
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
