/**
 * The few OER (octet encoding rules) shapes STREAM uses (RFC 29 §5): UInt8, VarUInt (a
 * length-prefixed big-endian unsigned integer), VarOctetString (a length-prefixed byte string).
 * Integers are bigints; anything malformed throws `OerError`.
 */

export class OerError extends Error {
  override name = 'OerError'
}

export const MAX_UINT64 = 2n ** 64n - 1n

/** Appends fields to a growing byte list. */
export class Writer {
  private readonly chunks: Buffer[] = []

  u8(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 255)
      throw new OerError(`not a UInt8: ${value}`)
    this.chunks.push(Buffer.from([value]))
    return this
  }

  /** The shortest big-endian bytes of `value`, at least one, behind their length. */
  varUInt(value: bigint): this {
    if (value < 0n) throw new OerError(`not an unsigned integer: ${value}`)
    let hex = value.toString(16)
    if (hex.length % 2) hex = `0${hex}`
    return this.varOctets(Buffer.from(hex, 'hex'))
  }

  varOctets(bytes: Uint8Array): this {
    this.length(bytes.length)
    this.chunks.push(Buffer.from(bytes))
    return this
  }

  utf8(text: string): this {
    return this.varOctets(Buffer.from(text, 'utf8'))
  }

  bytes(bytes: Uint8Array): this {
    this.chunks.push(Buffer.from(bytes))
    return this
  }

  /** OER length determinant: one byte below 128, else 0x80 | n followed by n length bytes. */
  private length(n: number): void {
    if (n < 128) {
      this.chunks.push(Buffer.from([n]))
      return
    }
    let hex = n.toString(16)
    if (hex.length % 2) hex = `0${hex}`
    const bytes = Buffer.from(hex, 'hex')
    this.chunks.push(Buffer.from([0x80 | bytes.length]), bytes)
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks)
  }
}

/** Reads fields off a buffer from the front; every read checks that the bytes are there. */
export class Reader {
  private offset = 0
  constructor(private readonly buffer: Buffer) {}

  get remaining(): number {
    return this.buffer.length - this.offset
  }

  u8(): number {
    return this.take(1)[0]!
  }

  /** A VarUInt of at most 8 bytes; `saturate` reads a longer one as MAX_UINT64 (RFC 29 §5.1.4). */
  varUInt(opts: { saturate?: boolean } = {}): bigint {
    const bytes = this.varOctets()
    if (bytes.length === 0) throw new OerError('empty VarUInt')
    if (bytes.length > 8) {
      if (opts.saturate) return MAX_UINT64
      throw new OerError('VarUInt larger than UInt64')
    }
    return BigInt(`0x${bytes.toString('hex')}`)
  }

  varOctets(): Buffer {
    return this.take(this.length())
  }

  utf8(): string {
    return this.varOctets().toString('utf8')
  }

  take(n: number): Buffer {
    if (n > this.remaining) throw new OerError('unexpected end of data')
    const slice = this.buffer.subarray(this.offset, this.offset + n)
    this.offset += n
    return slice
  }

  private length(): number {
    const first = this.u8()
    if (first < 128) return first
    const size = first & 0x7f
    // Lengths beyond 2^32 cannot describe bytes that fit in an ILP packet.
    if (size === 0 || size > 4) throw new OerError('bad length prefix')
    return Number(BigInt(`0x${this.take(size).toString('hex')}`))
  }
}
