import { deserializeIlpReply, type IlpReply, isFulfill, serializeIlpPrepare } from 'ilp-packet'
import type { SendData } from '../sender.ts'
import {
  encryptionKey,
  fulfillmentKey,
  fulfillmentOf,
  sha256,
  unfulfillableCondition,
} from './crypto.ts'
import { ErrorCode, type Frame, FrameType } from './frames.ts'
import { IlpPacketType, openPacket, type StreamPacket, sealPacket } from './packet.ts'

/** What came back for one Prepare. */
export interface Reply {
  fulfilled: boolean
  /** The ILP error code of a Reject ('F08', 'T04', …). */
  code?: string
  /** The Reject's data (F08 carries the amounts there). */
  data: Buffer
  /** The receiver's STREAM reply, if the reply carried an authentic one for this packet. */
  stream?: StreamPacket
}

/** Client-initiated streams are odd; one stream carries the whole payment. */
export const STREAM_ID = 1n
/** RFC 29 §5.1.3: a key must not seal more packets than this. */
const MAX_PACKETS = 2n ** 31n

/**
 * One STREAM connection from us to a receiver (RFC 29): every Prepare carries a sealed STREAM
 * packet with the next sequence number; a reply counts as the receiver's only if it opens with the
 * shared secret, is of the reply's ILP type and echoes that sequence.
 */
export class Connection {
  private sequence = 0n
  private readonly key: Buffer
  private readonly fulfillmentKey: Buffer

  constructor(
    private readonly sendData: SendData,
    private readonly destination: string,
    sharedSecret: Buffer,
    private readonly expiryMs: number,
  ) {
    this.key = encryptionKey(sharedSecret)
    this.fulfillmentKey = fulfillmentKey(sharedSecret)
  }

  /**
   * Sends `amount` with `minDelivery`, the least the receiver may accept for it. Unfulfillable
   * packets (a random condition) measure the path and move nothing.
   */
  async send(p: {
    amount: bigint
    minDelivery: bigint
    fulfillable: boolean
    frames?: Frame[]
    /** What the sender expects to arrive, for the packet's record (default: the minimum). */
    expectedDelivery?: bigint
  }): Promise<Reply> {
    this.sequence++
    if (this.sequence >= MAX_PACKETS) throw new Error('STREAM connection used up its packets')
    const sequence = this.sequence
    const data = sealPacket(this.key, {
      sequence,
      ilpPacketType: IlpPacketType.Prepare,
      prepareAmount: p.minDelivery,
      frames: p.frames ?? [],
    })
    const fulfillment = p.fulfillable ? fulfillmentOf(this.fulfillmentKey, data) : undefined
    const condition = fulfillment ? sha256(fulfillment) : unfulfillableCondition()
    const prepare = serializeIlpPrepare({
      amount: p.amount.toString(),
      expiresAt: new Date(Date.now() + this.expiryMs),
      executionCondition: condition,
      destination: this.destination,
      data,
    })
    const streamReply = (reply: IlpReply) => {
      const type = isFulfill(reply) ? IlpPacketType.Fulfill : IlpPacketType.Reject
      const packet = reply.data.length > 0 ? openPacket(this.key, reply.data) : undefined
      return packet?.ilpPacketType === type && packet.sequence === sequence ? packet : undefined
    }
    const raw = await this.sendData(
      prepare,
      fulfillment && {
        expectedDelivery: p.expectedDelivery ?? p.minDelivery,
        delivered: (reply) => streamReply(reply)?.prepareAmount,
      },
    )
    let reply: IlpReply
    try {
      reply = deserializeIlpReply(raw)
    } catch {
      return { fulfilled: false, code: 'T00', data: Buffer.alloc(0) }
    }
    if (isFulfill(reply) && !(fulfillment && reply.fulfillment.equals(fulfillment))) {
      // Nobody can fulfill what we did not make fulfillable: a broken hop, not money that arrived.
      return { fulfilled: false, code: 'F05', data: Buffer.alloc(0) }
    }
    const stream = streamReply(reply)
    return isFulfill(reply)
      ? { fulfilled: true, data: reply.data, ...(stream && { stream }) }
      : { fulfilled: false, code: reply.code, data: reply.data, ...(stream && { stream }) }
  }

  /** Tells the receiver we are done (a ConnectionClose frame); its answer does not matter. */
  async close(): Promise<void> {
    await this.send({
      amount: 0n,
      minDelivery: 0n,
      fulfillable: false,
      frames: [{ type: FrameType.ConnectionClose, errorCode: ErrorCode.NoError, errorMessage: '' }],
    }).catch(() => {})
  }
}

/** Whether the receiver closed the connection or our stream in this reply. */
export const closedByReceiver = (reply: Reply) =>
  reply.stream?.frames.some(
    (f) =>
      f.type === FrameType.ConnectionClose ||
      (f.type === FrameType.StreamClose && f.streamId === STREAM_ID),
  ) ?? false

/** What the receiver still accepts on our stream, in its units, if it said (StreamMaxMoney). */
export function receiverRoom(reply: Reply): bigint | undefined {
  for (const f of reply.stream?.frames ?? []) {
    if (f.type === FrameType.StreamMaxMoney && f.streamId === STREAM_ID) {
      return f.receiveMax > f.totalReceived ? f.receiveMax - f.totalReceived : 0n
    }
  }
  return undefined
}

/**
 * The largest packet the path carries, from an F08 reject: its data says how much reached the
 * hop that refused it and that hop's maximum, so the maximum scales back by the same ratio. Without
 * those amounts, one unit less than what was refused.
 */
export function maxPacketFromF08(reply: Reply, sent: bigint): bigint {
  if (reply.data.length >= 16) {
    const received = reply.data.readBigUInt64BE(0)
    const maximum = reply.data.readBigUInt64BE(8)
    if (received > maximum && received > 0n) return (maximum * sent) / received
  }
  return sent - 1n
}
