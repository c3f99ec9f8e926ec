/**
 * `tsx bench/perf-top.ts <perf-script.txt> [module|function] [n]`: where a process's CPU went, from
 * Linux `perf` samples of the server bundle run with `--perf-basic-prof` (docs/performance.md says
 * how to take them). Unlike V8's own profiler, which samples by the wall clock, `perf` counts CPU
 * time only, native code and the kernel included. Each sample is charged to the nearest JavaScript
 * frame on its stack, so the native work a function causes (`pg`'s socket writes, a hash) counts
 * as its own; that frame is named by its module in dist/main.js (the bundle's `// path` comments),
 * or by function and module. Samples with no JavaScript frame are charged to their native library.
 * The input is `perf script -F comm,pid,ip,sym,dso` of one process (`--pid`).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const [file, by = 'module', n = '30'] = process.argv.slice(2)
if (!file || (by !== 'module' && by !== 'function')) {
  throw new Error('usage: tsx bench/perf-top.ts <perf-script.txt> [module|function] [n]')
}

// The bundle's modules by first line: esbuild heads each with `// node_modules/…` or `// src/…`.
const bundle = readFileSync(join(import.meta.dirname, '..', 'dist', 'main.js'), 'utf8').split('\n')
const starts: { line: number; module: string }[] = []
for (const [i, text] of bundle.entries()) {
  if (text.startsWith('// node_modules/') || text.startsWith('// src/')) {
    starts.push({ line: i + 1, module: text.slice(3) })
  }
}
function moduleAt(line: number): string {
  let lo = 0
  let hi = starts.length - 1
  let found = '(bundle prelude)'
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (starts[mid]!.line <= line) {
      found = starts[mid]!.module
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}
/** A package for node_modules (`pg`, `@scope/name`), the folder for our own (`src/quotes`). */
function packageOf(module: string): string {
  const at = module.lastIndexOf('node_modules/')
  if (at < 0) return module.split('/').slice(0, 2).join('/')
  const [first, second] = module.slice(at + 'node_modules/'.length).split('/')
  return first!.startsWith('@') ? `${first}/${second}` : first!
}

// A frame of JIT code as --perf-basic-prof names it: `JS:*name file:///…/main.js:line:column`.
const JS_FRAME = / JS:[*~^]?(\S*) (file:\/\/\S+\/main\.js|node:\S+):(\d+):\d+/
function chargeOf(frames: string[]): string {
  for (const frame of frames) {
    const js = JS_FRAME.exec(frame)
    if (!js) continue
    const [, name, where, line] = js
    if (where!.startsWith('node:')) return where!.replace(/:\d+$/, '')
    const module = moduleAt(Number(line))
    return by === 'module' ? packageOf(module) : `${name || '(anonymous)'}  ${module}`
  }
  const leaf = frames[0] ?? ''
  if (leaf.includes('[kernel')) return 'kernel, outside JavaScript'
  return `native: ${/\(([^)]*)\)\s*$/.exec(leaf)?.[1]?.split('/').at(-1) ?? '?'}`
}

const charged = new Map<string, number>()
let samples = 0
let frames: string[] = []
const flush = () => {
  if (frames.length === 0) return
  const key = chargeOf(frames)
  charged.set(key, (charged.get(key) ?? 0) + 1)
  samples++
  frames = []
}
for (const text of readFileSync(file, 'utf8').split('\n')) {
  // A sample's header starts its line; its stack frames are indented.
  if (text.startsWith('\t') || text.startsWith(' ')) {
    if (text.trim()) frames.push(text)
  } else flush()
}
flush()
if (samples === 0) throw new Error(`no samples in ${file}`)
for (const [key, count] of [...charged].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) {
  console.log(`${((100 * count) / samples).toFixed(1).padStart(5)}%  ${key}`)
}
console.log(`${samples} samples`)
