import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { freePort } from './free-port.ts'

const run = promisify(execFile)

// Two test files starting servers side by side once got one port: each had found it free before
// either bound it. Ports handed out to separate processes at the same time must differ.
test('processes asking for ports at the same time are never handed the same one', async () => {
  const script = `
    import { freePort } from ${JSON.stringify(new URL('./free-port.ts', import.meta.url).href)}
    const ports = await Promise.all(Array.from({ length: 100 }, () => freePort()))
    console.log(JSON.stringify(ports))`
  const children = await Promise.all(
    [0, 1, 2].map(() =>
      run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]),
    ),
  )
  const ports = [
    ...children.flatMap((c) => JSON.parse(c.stdout) as number[]),
    ...(await Promise.all(Array.from({ length: 100 }, () => freePort()))),
  ]
  assert.equal(ports.length, 400)
  assert.equal(new Set(ports).size, 400)
})
