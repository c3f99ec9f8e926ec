import { decrypt, encrypt } from './crypto.ts'
import { type Frame, readFrame, writeFrame } from './frames.ts'
import { OerError, Reader, Writer } from './oer.ts'

/** The ILP packet types a STREAM packet says it travels in (RFC 29 §5.2). */
export const IlpPacketType = { Prepare: 12, Fulfill: 13, Reject: 14 } as const
export type IlpPacketTypeValue = (typeof IlpPacketType)[keyof typeof IlpPacketType]

export interface StreamPacket {
  sequence: bigint
  ilpPacketType: IlpPacketTypeValue
  /** On a Prepare the least the receiver may accept; on a reply the amount that arrived. */
  prepareAmount: bigint
  frames: Frame[]
}

const VERSION = 1

/** The plaintext STREAM packet: version, ILP packet type, sequence, amount, frames. */
export function encodePacket(p: StreamPacket): Buffer {
  const w = new Writer()
    .u8(VERSION)
    .u8(p.ilpPacketType)
    .varUInt(p.sequence)
    .varUInt(p.prepareAmount)
  w.varUInt(BigInt(p.frames.length))
  for (const frame of p.frames) writeFrame(w, frame)
  return w.toBuffer()
}

/** Reads a plaintext STREAM packet; unknown frames are dropped and trailing junk ignored. */
export function decodePacket(bytes: Buffer): StreamPacket {
  const r = new Reader(bytes)
  const version = r.u8()
  if (version !== VERSION) throw new OerError(`unsupported STREAM version ${version}`)
  const ilpPacketType = r.u8()
  if (!Object.values(IlpPacketType).includes(ilpPacketType as IlpPacketTypeValue)) {
    throw new OerError(`bad ILP packet type ${ilpPacketType}`)
  }
  const sequence = r.varUInt()
  const prepareAmount = r.varUInt()
  const count = r.varUInt()
  const frames: Frame[] = []
  for (let i = 0n; i < count; i++) {
    const frame = readFrame(r)
    if (frame) frames.push(frame)
  }
  return { sequence, ilpPacketType: ilpPacketType as IlpPacketTypeValue, prepareAmount, frames }
}

export const sealPacket = (key: Buffer, p: StreamPacket): Buffer => encrypt(key, encodePacket(p))

/** The STREAM packet in ILP data, or undefined if it is not one sealed with this key. */
export function openPacket(key: Buffer, data: Buffer): StreamPacket | undefined {
  const plaintext = decrypt(key, data)
  if (!plaintext) return undefined
  try {
    return decodePacket(plaintext)
  } catch {
    return undefined
  }
}
