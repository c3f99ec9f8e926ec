import assert from 'node:assert/strict'
import { test } from 'node:test'
import { OneAtATime } from './one-at-a-time.ts'

/** A task that records when it starts and ends, and ends when told to (or fails). */
function gated(log: string[], name: string) {
  let open!: () => void
  let fail!: (err: Error) => void
  const gate = new Promise<void>((resolve, reject) => {
    open = resolve
    fail = reject
  })
  const task = async () => {
    log.push(`${name} start`)
    try {
      await gate
      return name
    } finally {
      log.push(`${name} end`)
    }
  }
  return { task, open, fail }
}

test('tasks under one key run one after another, in order, a failure not stopping the next', async () => {
  const queue = new OneAtATime()
  const log: string[] = []
  const [a, b, c] = ['a', 'b', 'c'].map((n) => gated(log, n)) as [
    ReturnType<typeof gated>,
    ReturnType<typeof gated>,
    ReturnType<typeof gated>,
  ]
  const ra = queue.run('grant', a.task)
  const rb = queue.run('grant', b.task)
  const rc = queue.run('grant', c.task)
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(log, ['a start'], 'b and c wait for a')
  assert.equal(queue.waiting, 2)
  b.open()
  c.open()
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(log, ['a start'], 'b may not start before a ends, even when ready')
  a.fail(new Error('a failed'))
  await assert.rejects(ra, /a failed/)
  assert.equal(await rb, 'b')
  assert.equal(await rc, 'c')
  assert.equal(queue.waiting, 0)
  assert.deepEqual(log, ['a start', 'a end', 'b start', 'b end', 'c start', 'c end'])
  await new Promise((r) => setImmediate(r))
  assert.equal(queue.keys, 0, 'a key is dropped once its tasks are done')
})

test('tasks under different keys run at the same time', async () => {
  const queue = new OneAtATime()
  const log: string[] = []
  const x = gated(log, 'x')
  const y = gated(log, 'y')
  const rx = queue.run('one', x.task)
  const ry = queue.run('two', y.task)
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(log, ['x start', 'y start'])
  assert.equal(queue.keys, 2)
  assert.equal(queue.waiting, 0, 'neither waits for the other')
  y.open()
  assert.equal(await ry, 'y')
  x.open()
  assert.equal(await rx, 'x')
  await new Promise((r) => setImmediate(r))
  assert.equal(queue.keys, 0)
})
