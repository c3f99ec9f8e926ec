import assert from 'node:assert/strict'
import type { TestServer } from './server.ts'

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Scrape {
  samples: Sample[]
  /** The sum of the samples of `name` whose labels include `labels` (0 when there are none). */
  value(name: string, labels?: Record<string, string>): number
}

/** `GET /metrics` on the admin listener, parsed from the Prometheus text format. */
export async function scrape(server: TestServer): Promise<Scrape> {
  const res = await fetch(`${server.adminUrl}/metrics`, {
    headers: { authorization: `Bearer ${server.adminKey}` },
  })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/)
  const samples: Sample[] = []
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(m, `a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of m[2]?.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g) ?? [])
      labels[k!] = v!
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return {
    samples,
    value: (name, labels = {}) =>
      samples
        .filter(
          (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
        )
        .reduce((sum, s) => sum + s.value, 0),
  }
}
