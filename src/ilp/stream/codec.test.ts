import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { decrypt, encrypt, encryptionKey, fulfillmentKey, fulfillmentOf, sha256 } from './crypto.ts'
import { type Frame, FrameType, readFrame, writeFrame } from './frames.ts'
import { Reader, Writer } from './oer.ts'
import { decodePacket, encodePacket, openPacket, type StreamPacket, sealPacket } from './packet.ts'

const require = createRequire(import.meta.url)
const vectors = require('./fixtures/rfc29-vectors.json') as {
  packets: {
    name: string
    packet: {
      sequence: string
      packetType: number
      amount: string
      frames: Record<string, unknown>[]
    }
    buffer: string
    decode_only?: boolean
  }[]
  frames: Record<string, string | number>[]
}
// ilp-protocol-stream 2.7.1 (the JavaScript STREAM of the Interledger reference implementations),
// installed under an alias as a development dependency: a byte-for-byte parity oracle.
const oracle = require('ilp-protocol-stream-2.7.1/dist/src/packet')
const oracleCrypto = require('ilp-protocol-stream-2.7.1/dist/src/crypto')

const BIG = new Set([
  'sequence',
  'maxOffset',
  'maxStreamId',
  'streamId',
  'shares',
  'receiveMax',
  'totalReceived',
  'sendMax',
  'totalSent',
  'offset',
])

/** A vector's JSON frame as our codec's frame: numbers as bigints, base64 data as bytes. */
function frameOf(json: Record<string, unknown>): Frame {
  const frame: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(json)) {
    if (k === 'name') continue
    if (BIG.has(k)) frame[k] = BigInt(v as string)
    else if (k === 'data' || k === 'receipt') frame[k] = Buffer.from(v as string, 'base64')
    else frame[k] = v
  }
  return frame as unknown as Frame
}

const packetOf = (json: (typeof vectors.packets)[number]['packet']): StreamPacket => ({
  sequence: BigInt(json.sequence),
  ilpPacketType: json.packetType as StreamPacket['ilpPacketType'],
  prepareAmount: BigInt(json.amount),
  frames: json.frames.map(frameOf),
})

describe('STREAM packets against the RFC 29 test vectors', () => {
  for (const v of vectors.packets) {
    test(v.name, () => {
      const bytes = Buffer.from(v.buffer, 'base64')
      assert.deepEqual(decodePacket(bytes), packetOf(v.packet))
      if (!v.decode_only)
        assert.equal(encodePacket(packetOf(v.packet)).toString('base64'), v.buffer)
    })
  }
})

/** The frame-only vectors name some types and fields differently from the packet vectors. */
const TYPES: Record<string, number> = {
  ConnectionClose: FrameType.ConnectionClose,
  ConnectionNewAddress: FrameType.ConnectionNewAddress,
  ConnectionDataMax: FrameType.ConnectionMaxData,
  ConnectionDataBlocked: FrameType.ConnectionDataBlocked,
  ConnectionMaxStreamId: FrameType.ConnectionMaxStreamId,
  ConnectionStreamIdBlocked: FrameType.ConnectionStreamIdBlocked,
  StreamClose: FrameType.StreamClose,
  StreamMoney: FrameType.StreamMoney,
  StreamMoneyMax: FrameType.StreamMaxMoney,
  StreamMoneyBlocked: FrameType.StreamMoneyBlocked,
  StreamData: FrameType.StreamData,
  StreamDataMax: FrameType.StreamMaxData,
  StreamDataBlocked: FrameType.StreamDataBlocked,
  ConnectionAssetDetails: FrameType.ConnectionAssetDetails,
}

describe('STREAM frames against the RFC 29 frame vectors', () => {
  for (const v of vectors.frames) {
    test(String(v.type), () => {
      const { type, expectedAsn1OerBytes, sourceAddress, base64Data, errorCode, ...rest } = v
      const frame = frameOf({
        ...rest,
        type: TYPES[type as string],
        ...(sourceAddress !== undefined && { sourceAccount: sourceAddress }),
        ...(base64Data !== undefined && { data: base64Data }),
        ...(errorCode !== undefined && { errorCode: Number(errorCode) }),
      })
      const w = new Writer()
      writeFrame(w, frame)
      assert.equal(w.toBuffer().toString('base64'), expectedAsn1OerBytes)
      assert.deepEqual(
        readFrame(new Reader(Buffer.from(expectedAsn1OerBytes as string, 'base64'))),
        frame,
      )
    })
  }
})

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constant(FrameType.StreamMoney), streamId: u64, shares: u64 }),
  fc.record({
    type: fc.constant(FrameType.StreamMaxMoney),
    streamId: u64,
    receiveMax: u64,
    totalReceived: u64,
  }),
  fc.record({
    type: fc.constant(FrameType.ConnectionClose),
    errorCode: fc.integer({ min: 1, max: 9 }),
    errorMessage: fc.string({ maxLength: 300 }),
  }),
  fc.record({
    type: fc.constant(FrameType.StreamClose),
    streamId: u64,
    errorCode: fc.integer({ min: 1, max: 9 }),
    errorMessage: fc.string(),
  }),
  fc.record({
    type: fc.constant(FrameType.ConnectionAssetDetails),
    sourceAssetCode: fc.string({ minLength: 1, maxLength: 10 }),
    sourceAssetScale: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ type: fc.constant(FrameType.ConnectionMaxData), maxOffset: u64 }),
) as fc.Arbitrary<Frame>
const packetArb = fc
  .record({
    sequence: u64,
    ilpPacketType: fc.constantFrom(12, 13, 14),
    prepareAmount: u64,
    frames: fc.array(frameArb, { maxLength: 5 }),
  })
  // fast-check builds records without a prototype; the codec returns plain objects.
  .map((p) => ({ ...p, frames: p.frames.map((f) => ({ ...f })) })) as fc.Arbitrary<StreamPacket>

/** Our frame as the oracle's frame object. */
function oracleFrame(f: Frame) {
  const s = (v: bigint) => v.toString()
  switch (f.type) {
    case FrameType.StreamMoney:
      return new oracle.StreamMoneyFrame(s(f.streamId), s(f.shares))
    case FrameType.StreamMaxMoney:
      return new oracle.StreamMaxMoneyFrame(s(f.streamId), s(f.receiveMax), s(f.totalReceived))
    case FrameType.ConnectionClose:
      return new oracle.ConnectionCloseFrame(f.errorCode, f.errorMessage)
    case FrameType.StreamClose:
      return new oracle.StreamCloseFrame(s(f.streamId), f.errorCode, f.errorMessage)
    case FrameType.ConnectionAssetDetails:
      return new oracle.ConnectionAssetDetailsFrame(f.sourceAssetCode, f.sourceAssetScale)
    case FrameType.ConnectionMaxData:
      return new oracle.ConnectionMaxDataFrame(s(f.maxOffset))
    default:
      throw new Error(`no oracle frame for ${f.type}`)
  }
}

describe('parity with ilp-protocol-stream 2.7.1', () => {
  test('packets encode to the same bytes and each decodes the other', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        const theirs = new oracle.Packet(
          p.sequence.toString(),
          p.ilpPacketType,
          p.prepareAmount.toString(),
          p.frames.map(oracleFrame),
        )._serialize() as Buffer
        const ours = encodePacket(p)
        assert.equal(ours.toString('hex'), theirs.toString('hex'))
        assert.deepEqual(decodePacket(theirs), p)
      }),
      { numRuns: 300 },
    )
  })

  test('keys, fulfillments and sealed packets match', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        packetArb,
        async (raw, p) => {
          const secret = Buffer.from(raw)
          const key = encryptionKey(secret)
          assert.deepEqual(key, await oracleCrypto.generatePskEncryptionKey(secret))
          const fKey = fulfillmentKey(secret)
          assert.deepEqual(fKey, await oracleCrypto.generateFulfillmentKey(secret))
          const sealed = sealPacket(key, p)
          // The oracle opens what we seal, and we open what it seals.
          const opened = await oracle.Packet.decryptAndDeserialize(key, sealed)
          assert.equal(opened._serialize().toString('hex'), encodePacket(p).toString('hex'))
          const theirs = await new oracle.Packet(
            p.sequence.toString(),
            p.ilpPacketType,
            p.prepareAmount.toString(),
            p.frames.map(oracleFrame),
          ).serializeAndEncrypt(key)
          assert.deepEqual(openPacket(key, theirs), p)
          assert.deepEqual(
            fulfillmentOf(fKey, sealed),
            await oracleCrypto.generateFulfillment(fKey, sealed),
          )
        },
      ),
      { numRuns: 50 },
    )
  })

  test('altered, truncated or foreign data does not open', () => {
    const key = encryptionKey(Buffer.alloc(32, 7))
    const sealed = encrypt(key, Buffer.from('hello'))
    assert.deepEqual(decrypt(key, sealed), Buffer.from('hello'))
    const altered = Buffer.from(sealed)
    altered[altered.length - 1]! ^= 1
    assert.equal(decrypt(key, altered), undefined)
    assert.equal(decrypt(key, sealed.subarray(0, 27)), undefined)
    assert.equal(decrypt(encryptionKey(Buffer.alloc(32, 8)), sealed), undefined)
    assert.equal(openPacket(key, sealed), undefined) // authentic, but not a STREAM packet
    assert.equal(sha256(Buffer.alloc(0)).toString('hex').slice(0, 8), 'e3b0c442')
  })
})
