import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { StreamServer } from '@interledger/stream-receiver'
import { createStreamReceiver } from './stream-receiver.ts'

const USD = { code: 'USD', scale: 2 }

test('connection tokens: authentic ones kept up to the bound, least recently used out; others never', () => {
  // Counts the pinned receiver's own decryptions, which the kept details save.
  const proto = StreamServer.prototype as unknown as { decryptToken: (t: Buffer) => unknown }
  const original = proto.decryptToken
  let decrypted = 0
  proto.decryptToken = function (this: unknown, token: Buffer) {
    decrypted++
    return original.call(this, token)
  }
  try {
    const stream = createStreamReceiver({
      secret: randomBytes(32),
      ilpAddress: 'test.ase',
      maxTokens: 2,
    })
    const [a, b, c] = ['a', 'b', 'c'].map((tag) => stream.credentials(tag, USD).ilpAddress)
    const decode = (address: string, expected: string | undefined) => {
      assert.equal(stream.paymentId(address), expected)
      return decrypted
    }
    assert.equal(decode(a!, 'a'), 1)
    assert.equal(decode(b!, 'b'), 2)
    assert.equal(decode(a!, 'a'), 2, 'kept')
    assert.equal(decode(c!, 'c'), 3, 'c pushes out b, the least recently used')
    assert.equal(decode(a!, 'a'), 3, 'a is still kept')
    assert.equal(decode(b!, 'b'), 4, 'b was pushed out')
    const forged = `test.ase.${randomBytes(60).toString('base64url')}`
    assert.equal(decode(forged, undefined), 5)
    assert.equal(decode(forged, undefined), 6, 'a token that fails to decrypt is not kept')
  } finally {
    proto.decryptToken = original
  }
})
