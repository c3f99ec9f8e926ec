/**
 * Runs every test file (`src/**\/*.test.ts`, `test/**\/*.test.ts`) with node:test through tsx.
 * Node 20's `--test` finds no .ts files on its own and exits 0, so files are listed explicitly and
 * a run that executed no test fails. Arguments filter files by substring: `npm test -- ledger`.
 */
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = join(import.meta.dirname, '..')
const filters = process.argv.slice(2)

function find(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : find(path)
    return e.name.endsWith('.test.ts') ? [relative(root, path)] : []
  })
}

const files = [...find(join(root, 'src')), ...find(join(root, 'test'))]
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}

const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    '--test-concurrency=2',
    '--test-timeout=180000',
    ...files,
  ],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_ENV: 'test' } },
)
// The summary's count, read as it streams past: failure details can follow it at length.
let tail = ''
let ran = 0
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString()).slice(-200)
  ran = Number(/ℹ tests (\d+)/.exec(tail)?.[1] ?? ran)
})
child.on('close', (code) => {
  if (ran === 0) {
    console.error('no test ran')
    process.exit(1)
  }
  process.exit(code ?? 1)
})
