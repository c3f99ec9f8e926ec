/**
 * `tsx bench/profile-top.ts <file.cpuprofile> [n]`: the functions a V8 CPU profile (from
 * `BENCH_NODE_ARGS="--cpu-prof …"`) spent the most self time in, and that time by package, so a
 * profile can be read without a browser. Shares are of busy time (idle left out); garbage
 * collection and the like are listed as V8 names them.
 */
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}
const [file, n = '15'] = process.argv.slice(2)
if (!file) throw new Error('usage: tsx bench/profile-top.ts <file.cpuprofile> [n]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as {
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
}
const byNode = new Map<number, number>()
for (const [i, id] of profile.samples.entries()) {
  byNode.set(id, (byNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const idle = new Set(
  profile.nodes.filter((x) => x.callFrame.functionName === '(idle)').map((x) => x.id),
)
// Shares of the time the process was busy: idle time depends on the load, not on the code.
const total = [...byNode].reduce((a, [id, us]) => (idle.has(id) ? a : a + us), 0)
const byFunction = new Map<string, number>()
const byPackage = new Map<string, number>()
for (const node of profile.nodes) {
  const us = idle.has(node.id) ? 0 : (byNode.get(node.id) ?? 0)
  const { functionName, url, lineNumber } = node.callFrame
  const where = url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/')
  const fn = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
  const pkg =
    /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
    (url.includes('/src/') ? 'our code' : url.startsWith('node:') ? 'node' : url || functionName)
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us)
}
const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(n))
const pct = (us: number) => `${((100 * us) / total).toFixed(1)}%`
console.log(`${file}: ${(total / 1e6).toFixed(1)} s busy\n\n| self time | function |\n|---:|---|`)
for (const [k, us] of top(byFunction)) console.log(`| ${pct(us)} | \`${k}\` |`)
console.log('\n| self time | package |\n|---:|---|')
for (const [k, us] of top(byPackage)) console.log(`| ${pct(us)} | ${k} |`)
