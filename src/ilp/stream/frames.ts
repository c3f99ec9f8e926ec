import { Reader, Writer } from './oer.ts'

/** STREAM frame types (RFC 29 §5.3). */
export const FrameType = {
  ConnectionClose: 0x01,
  ConnectionNewAddress: 0x02,
  ConnectionMaxData: 0x03,
  ConnectionDataBlocked: 0x04,
  ConnectionMaxStreamId: 0x05,
  ConnectionStreamIdBlocked: 0x06,
  ConnectionAssetDetails: 0x07,
  StreamClose: 0x10,
  StreamMoney: 0x11,
  StreamMaxMoney: 0x12,
  StreamMoneyBlocked: 0x13,
  StreamData: 0x14,
  StreamMaxData: 0x15,
  StreamDataBlocked: 0x16,
  StreamReceipt: 0x17,
} as const

/** Error codes of ConnectionClose and StreamClose (RFC 29 §5.4). */
export const ErrorCode = {
  NoError: 0x01,
  InternalError: 0x02,
  EndpointBusy: 0x03,
  FlowControlError: 0x04,
  StreamIdError: 0x05,
  StreamStateError: 0x06,
  FrameFormatError: 0x07,
  ProtocolViolation: 0x08,
  ApplicationError: 0x09,
} as const

type T = typeof FrameType
export type Frame =
  | { type: T['ConnectionClose']; errorCode: number; errorMessage: string }
  | { type: T['ConnectionNewAddress']; sourceAccount: string }
  | { type: T['ConnectionMaxData'] | T['ConnectionDataBlocked']; maxOffset: bigint }
  | { type: T['ConnectionMaxStreamId'] | T['ConnectionStreamIdBlocked']; maxStreamId: bigint }
  | { type: T['ConnectionAssetDetails']; sourceAssetCode: string; sourceAssetScale: number }
  | { type: T['StreamClose']; streamId: bigint; errorCode: number; errorMessage: string }
  | { type: T['StreamMoney']; streamId: bigint; shares: bigint }
  | { type: T['StreamMaxMoney']; streamId: bigint; receiveMax: bigint; totalReceived: bigint }
  | { type: T['StreamMoneyBlocked']; streamId: bigint; sendMax: bigint; totalSent: bigint }
  | { type: T['StreamData']; streamId: bigint; offset: bigint; data: Buffer }
  | { type: T['StreamMaxData'] | T['StreamDataBlocked']; streamId: bigint; maxOffset: bigint }
  | { type: T['StreamReceipt']; streamId: bigint; receipt: Buffer }

/**
 * How each frame's contents are laid out, field by field. `uint!` is a VarUInt that saturates at
 * MAX_UINT64 when it is longer (receive and send maxima, RFC 29 §5.1.4).
 */
type Field = 'u8' | 'uint' | 'uint!' | 'utf8' | 'octets'
const LAYOUT: Record<number, [string, Field][]> = {
  [FrameType.ConnectionClose]: [
    ['errorCode', 'u8'],
    ['errorMessage', 'utf8'],
  ],
  [FrameType.ConnectionNewAddress]: [['sourceAccount', 'utf8']],
  [FrameType.ConnectionMaxData]: [['maxOffset', 'uint']],
  [FrameType.ConnectionDataBlocked]: [['maxOffset', 'uint']],
  [FrameType.ConnectionMaxStreamId]: [['maxStreamId', 'uint']],
  [FrameType.ConnectionStreamIdBlocked]: [['maxStreamId', 'uint']],
  [FrameType.ConnectionAssetDetails]: [
    ['sourceAssetCode', 'utf8'],
    ['sourceAssetScale', 'u8'],
  ],
  [FrameType.StreamClose]: [
    ['streamId', 'uint'],
    ['errorCode', 'u8'],
    ['errorMessage', 'utf8'],
  ],
  [FrameType.StreamMoney]: [
    ['streamId', 'uint'],
    ['shares', 'uint'],
  ],
  [FrameType.StreamMaxMoney]: [
    ['streamId', 'uint'],
    ['receiveMax', 'uint!'],
    ['totalReceived', 'uint'],
  ],
  [FrameType.StreamMoneyBlocked]: [
    ['streamId', 'uint'],
    ['sendMax', 'uint!'],
    ['totalSent', 'uint'],
  ],
  [FrameType.StreamData]: [
    ['streamId', 'uint'],
    ['offset', 'uint'],
    ['data', 'octets'],
  ],
  [FrameType.StreamMaxData]: [
    ['streamId', 'uint'],
    ['maxOffset', 'uint'],
  ],
  [FrameType.StreamDataBlocked]: [
    ['streamId', 'uint'],
    ['maxOffset', 'uint'],
  ],
  [FrameType.StreamReceipt]: [
    ['streamId', 'uint'],
    ['receipt', 'octets'],
  ],
}

/** A frame as `type u8 | VarOctetString(contents)`. */
export function writeFrame(w: Writer, frame: Frame): void {
  const contents = new Writer()
  const values = frame as unknown as Record<string, unknown>
  for (const [name, field] of LAYOUT[frame.type]!) {
    const value = values[name]
    if (field === 'u8') contents.u8(value as number)
    else if (field === 'utf8') contents.utf8(value as string)
    else if (field === 'octets') contents.varOctets(value as Buffer)
    else contents.varUInt(value as bigint)
  }
  w.u8(frame.type).varOctets(contents.toBuffer())
}

/** The next frame, or undefined for a type this version does not know (it must be skipped). */
export function readFrame(r: Reader): Frame | undefined {
  const type = r.u8()
  const contents = new Reader(r.varOctets())
  const layout = LAYOUT[type]
  if (!layout) return undefined
  const frame: Record<string, unknown> = { type }
  for (const [name, field] of layout) {
    if (field === 'u8') frame[name] = contents.u8()
    else if (field === 'utf8') frame[name] = contents.utf8()
    else if (field === 'octets') frame[name] = Buffer.from(contents.varOctets())
    else frame[name] = contents.varUInt({ saturate: field === 'uint!' })
  }
  return frame as Frame
}
