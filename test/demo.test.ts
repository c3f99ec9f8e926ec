import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'

test('npm run demo runs the whole flow on the embedded database', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/demo.ts'], {
    cwd: join(import.meta.dirname, '..'),
    env: { PATH: process.env.PATH ?? '' },
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const code = await new Promise((resolve) => child.on('exit', resolve))
  assert.equal(code, 0, out)
  assert.match(out, /Bob receives: 120\.00 USD/)
  assert.match(out, /Alice pays \(fee included\): 120\.85 USD/)
  assert.match(out, /sent: 120\.00 USD\n/)
  assert.match(out, /completed: true/)
  assert.match(out, /Alice: 379\.15 USD/)
  assert.match(out, /ledger balanced: true/)
})
