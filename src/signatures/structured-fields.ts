/**
 * The part of RFC 8941 (Structured Field Values) that Signature-Input, Signature and Content-Digest
 * need: Dictionaries of Items and Inner Lists, with Parameters.
 */

export type BareItem =
  | { type: 'integer' | 'decimal'; value: number }
  | { type: 'string' | 'token'; value: string }
  | { type: 'boolean'; value: boolean }
  | { type: 'bytes'; value: Buffer }

export type Parameters = Map<string, BareItem>

export interface Item {
  value: BareItem
  params: Parameters
}

export interface InnerList {
  items: Item[]
  params: Parameters
}

export type Member = (Item | InnerList) & {
  /** The member value exactly as received (after `key=`), parameters included. */
  raw: string
}

export type Dictionary = Map<string, Member>

class ParseError extends Error {}

/** Parses a Dictionary field value; undefined when it is not valid RFC 8941. */
export function parseDictionary(input: string): Dictionary | undefined {
  try {
    return new Parser(input).dictionary()
  } catch (err) {
    if (err instanceof ParseError) return undefined
    throw err
  }
}

export const isInnerList = (m: Item | InnerList): m is InnerList => 'items' in m

const KEY_START = /[a-z*]/
const KEY_CHAR = /[a-z0-9_\-.*]/
const TOKEN_START = /[A-Za-z*]/
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/
const DIGIT = /[0-9]/
const BASE64 = /^[A-Za-z0-9+/=]*$/

class Parser {
  private pos = 0

  constructor(private readonly input: string) {}

  dictionary(): Dictionary {
    const dict: Dictionary = new Map()
    this.skip(' ')
    if (this.pos === this.input.length) return dict
    while (true) {
      const key = this.key()
      const hasValue = this.peek() === '='
      if (hasValue) this.pos++
      const start = this.pos
      const member: Item | InnerList = !hasValue
        ? { value: { type: 'boolean', value: true }, params: this.parameters() }
        : this.peek() === '('
          ? this.innerList()
          : this.item()
      // A later duplicate key replaces the earlier value (RFC 8941 section 4.2.2).
      dict.set(key, { ...member, raw: this.input.slice(start, this.pos) })
      this.skipOws()
      if (this.pos === this.input.length) return dict
      this.expect(',')
      this.skipOws()
      if (this.pos === this.input.length) throw new ParseError('trailing comma')
    }
  }

  private innerList(): InnerList {
    this.expect('(')
    const items: Item[] = []
    while (true) {
      this.skip(' ')
      if (this.peek() === ')') {
        this.pos++
        return { items, params: this.parameters() }
      }
      items.push(this.item())
      const next = this.peek()
      if (next !== ' ' && next !== ')') throw new ParseError('bad inner list')
    }
  }

  private item(): Item {
    return { value: this.bareItem(), params: this.parameters() }
  }

  private parameters(): Parameters {
    const params: Parameters = new Map()
    while (this.peek() === ';') {
      this.pos++
      this.skip(' ')
      const key = this.key()
      let value: BareItem = { type: 'boolean', value: true }
      if (this.peek() === '=') {
        this.pos++
        value = this.bareItem()
      }
      params.set(key, value)
    }
    return params
  }

  private key(): string {
    const start = this.pos
    if (!KEY_START.test(this.peek())) throw new ParseError('bad key')
    while (KEY_CHAR.test(this.peek())) this.pos++
    return this.input.slice(start, this.pos)
  }

  private bareItem(): BareItem {
    const c = this.peek()
    if (c === '-' || DIGIT.test(c)) return this.number()
    if (c === '"') return this.string()
    if (c === ':') return this.bytes()
    if (c === '?') return this.boolean()
    if (TOKEN_START.test(c)) return this.token()
    throw new ParseError('bad item')
  }

  private number(): BareItem {
    const start = this.pos
    if (this.peek() === '-') this.pos++
    if (!DIGIT.test(this.peek())) throw new ParseError('bad number')
    let decimal = false
    let intDigits = 0
    let fracDigits = 0
    while (true) {
      const c = this.peek()
      if (DIGIT.test(c)) {
        if (decimal) fracDigits++
        else intDigits++
      } else if (c === '.' && !decimal) {
        if (intDigits > 12) throw new ParseError('decimal too long')
        decimal = true
      } else {
        break
      }
      this.pos++
      if (!decimal && intDigits > 15) throw new ParseError('integer too long')
    }
    if (decimal && (fracDigits === 0 || fracDigits > 3)) throw new ParseError('bad decimal')
    const value = Number(this.input.slice(start, this.pos))
    return { type: decimal ? 'decimal' : 'integer', value }
  }

  private string(): BareItem {
    this.expect('"')
    let value = ''
    while (this.pos < this.input.length) {
      const c = this.input[this.pos++]!
      if (c === '"') return { type: 'string', value }
      if (c === '\\') {
        const escaped = this.input[this.pos++]
        if (escaped !== '"' && escaped !== '\\') throw new ParseError('bad escape')
        value += escaped
      } else if (c < ' ' || c > '~') {
        throw new ParseError('bad string character')
      } else {
        value += c
      }
    }
    throw new ParseError('unterminated string')
  }

  private token(): BareItem {
    const start = this.pos
    while (TOKEN_CHAR.test(this.peek())) this.pos++
    return { type: 'token', value: this.input.slice(start, this.pos) }
  }

  private bytes(): BareItem {
    this.expect(':')
    const end = this.input.indexOf(':', this.pos)
    if (end === -1) throw new ParseError('unterminated byte sequence')
    const content = this.input.slice(this.pos, end)
    if (!BASE64.test(content)) throw new ParseError('bad base64')
    this.pos = end + 1
    return { type: 'bytes', value: Buffer.from(content, 'base64') }
  }

  private boolean(): BareItem {
    this.expect('?')
    const c = this.input[this.pos++]
    if (c !== '0' && c !== '1') throw new ParseError('bad boolean')
    return { type: 'boolean', value: c === '1' }
  }

  private peek(): string {
    return this.input[this.pos] ?? ''
  }

  private expect(c: string): void {
    if (this.input[this.pos] !== c) throw new ParseError(`expected ${c}`)
    this.pos++
  }

  private skip(c: string): void {
    while (this.input[this.pos] === c) this.pos++
  }

  private skipOws(): void {
    while (this.input[this.pos] === ' ' || this.input[this.pos] === '\t') this.pos++
  }
}
