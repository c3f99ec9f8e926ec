import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { StreamServer } from '@interledger/stream-receiver'
import { type IlpPrepare, type IlpReply, isIlpReply } from 'ilp-packet'
import { encryptionKey, fulfillmentKey, fulfillmentOf, hmac, sha256 } from './stream/crypto.ts'
import { ErrorCode, type Frame, FrameType } from './stream/frames.ts'
import { IlpPacketType, openPacket, sealPacket } from './stream/packet.ts'
import { createStreamReceiver, type IncomingMoney } from './stream-receiver.ts'

const USD = { code: 'USD', scale: 2 }

test('connection tokens: authentic ones kept up to the bound, least recently used out; others never', () => {
  const stream = createStreamReceiver({
    secret: randomBytes(32),
    ilpAddress: 'test.ase',
    maxTokens: 2,
  })
  const [a, b, c] = ['a', 'b', 'c'].map((tag) => stream.credentials(tag, USD).ilpAddress)
  const decode = (address: string, expected: string | undefined) => {
    assert.equal(stream.paymentId(address), expected)
    return stream.tokensDecrypted
  }
  assert.equal(decode(a!, 'a'), 1)
  assert.equal(decode(b!, 'b'), 2)
  assert.equal(decode(a!, 'a'), 2, 'kept')
  assert.equal(decode(`${a}.more.segments`, 'a'), 2, 'the same token, further down the address')
  assert.equal(decode(c!, 'c'), 3, 'c pushes out b, the least recently used')
  assert.equal(decode(a!, 'a'), 3, 'a is still kept')
  assert.equal(decode(b!, 'b'), 4, 'b was pushed out')
  const forged = `test.ase.${randomBytes(60).toString('base64url')}`
  assert.equal(decode(forged, undefined), 5)
  assert.equal(decode(forged, undefined), 6, 'a token that fails to decrypt is not kept')
  assert.equal(decode('test.other.abc', undefined), 6, 'not our address: nothing to decrypt')
  assert.equal(decode('test.ase.', undefined), 6)
})

/**
 * This receiver replaced `@interledger/stream-receiver` 0.3.3-alpha.3 (which Rafiki uses): the
 * addresses either issues are the other's, and every Prepare gets the same answer from both (the
 * data compared as the sender reads it: the AES-GCM nonce is random).
 */
test('the same tokens and the same answers as @interledger/stream-receiver, for every kind of Prepare', () => {
  const secret = randomBytes(32)
  const ilpAddress = 'test.ase'
  const ours = createStreamReceiver({ secret, ilpAddress })
  const theirs = new StreamServer({ serverSecret: secret, serverAddress: ilpAddress })
  const paymentId = '3f1c2a9e-5b7d-4e0a-8c61-0d2b9f4a7e15'

  const issuedByThem = theirs.generateCredentials({ paymentTag: paymentId, asset: USD })
  assert.equal(ours.paymentId(issuedByThem.ilpAddress), paymentId)
  const issuedByUs = ours.credentials(paymentId, USD)
  assert.equal(theirs.decodePaymentTag(issuedByUs.ilpAddress), paymentId)
  assert.notEqual(
    issuedByUs.ilpAddress,
    ours.credentials(paymentId, USD).ilpAddress,
    'fresh tokens',
  )

  for (const [who, { ilpAddress: address, sharedSecret }] of [
    ['theirs', { ilpAddress: issuedByThem.ilpAddress, sharedSecret: issuedByThem.sharedSecret }],
    ['ours', { ...issuedByUs, sharedSecret: Buffer.from(issuedByUs.sharedSecret, 'base64url') }],
  ] as const) {
    assert.deepEqual(
      hmac(
        hmac(secret, 'ilp_stream_shared_secret'),
        Buffer.from(address.split('.')[2]!, 'base64url'),
      ),
      sharedSecret,
      `${who}: the shared secret derives from the token`,
    )
    const key = encryptionKey(sharedSecret)
    const prepare = (
      amount: bigint,
      opts: { min?: bigint; frames?: Frame[]; probe?: boolean; type?: number; data?: Buffer } = {},
    ): IlpPrepare => {
      const data =
        opts.data ??
        sealPacket(key, {
          sequence: 7n,
          ilpPacketType: (opts.type ?? IlpPacketType.Prepare) as 12,
          prepareAmount: opts.min ?? 0n,
          frames: opts.frames ?? [{ type: FrameType.StreamMoney, streamId: 1n, shares: 1n }],
        })
      return {
        destination: address,
        amount: amount.toString(),
        expiresAt: new Date(Date.now() + 30_000),
        executionCondition: opts.probe
          ? randomBytes(32)
          : sha256(fulfillmentOf(fulfillmentKey(sharedSecret), data)),
        data,
      }
    }
    const cases: [string, IlpPrepare][] = [
      ['money', prepare(500n, { min: 400n })],
      [
        'money with a new address',
        prepare(500n, {
          frames: [{ type: FrameType.ConnectionNewAddress, sourceAccount: 'test.sender' }],
        }),
      ],
      ['below the minimum', prepare(399n, { min: 400n })],
      ['a rate probe', prepare(1000n, { probe: true })],
      ['zero', prepare(0n)],
      [
        'a close',
        prepare(0n, {
          frames: [
            { type: FrameType.ConnectionClose, errorCode: ErrorCode.NoError, errorMessage: 'bye' },
          ],
        }),
      ],
      ['a reply type', prepare(10n, { type: IlpPacketType.Fulfill })],
      ['data not sealed for this connection', prepare(10n, { data: randomBytes(80) })],
      ['another address', { ...prepare(10n), destination: 'test.elsewhere.abc' }],
      [
        'a forged token',
        { ...prepare(10n), destination: `test.ase.${randomBytes(60).toString('base64url')}` },
      ],
    ]
    for (const [name, p] of cases) {
      const a = ours.createReply(p)
      const b = theirs.createReply(p)
      const what = `${who}: ${name}`
      assert.equal(isIlpReply(a), isIlpReply(b), what)
      if (isIlpReply(a)) {
        assert.deepEqual(readable(a, key), readable(b as IlpReply, key), what)
      } else {
        const money = b as IncomingMoney
        assert.deepEqual(
          readable(a.accept(), key),
          readable(money.accept(), key),
          `${what}: accept`,
        )
        assert.deepEqual(
          readable(a.finalDecline(), key),
          readable(money.finalDecline(), key),
          `${what}: final decline`,
        )
      }
    }
  }
})

/** A reply as its sender reads it: the STREAM packet in its data opened. */
const readable = (reply: IlpReply, key: Buffer) => ({
  ...reply,
  data: reply.data.length === 0 ? 'none' : openPacket(key, reply.data),
})
