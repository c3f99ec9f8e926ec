import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type Dictionary, isInnerList, parseDictionary } from './structured-fields.ts'

const parse = (input: string): Dictionary => {
  const dict = parseDictionary(input)
  assert.ok(dict, `expected ${JSON.stringify(input)} to parse`)
  return dict
}

describe('parseDictionary', () => {
  test('reads a Signature-Input member: an inner list of strings with parameters', () => {
    const raw = '("@method" "@target-uri" "authorization");keyid="k1";created=1795258139'
    const member = parse(`sig1=${raw}`).get('sig1')!
    assert.ok(isInnerList(member))
    assert.deepEqual(
      member.items.map((i) => i.value),
      ['@method', '@target-uri', 'authorization'].map((value) => ({ type: 'string', value })),
    )
    assert.deepEqual(member.params.get('keyid'), { type: 'string', value: 'k1' })
    assert.deepEqual(member.params.get('created'), { type: 'integer', value: 1795258139 })
    assert.equal(member.raw, raw)
  })

  test('keeps each member raw value exactly, for the signature base', () => {
    const a = '("@method";req "x");alg="ed25519";keyid="a b"'
    const b = '();created=1'
    const dict = parse(`  sig1=${a} ,\tsig-2=${b}  `)
    assert.deepEqual([...dict.keys()], ['sig1', 'sig-2'])
    assert.equal(dict.get('sig1')!.raw, a)
    assert.equal(dict.get('sig-2')!.raw, b)
    const inner = dict.get('sig1')!
    assert.ok(isInnerList(inner))
    assert.deepEqual(inner.items[0]!.params.get('req'), { type: 'boolean', value: true })
  })

  test('reads every bare item type', () => {
    const dict = parse(
      'i=-42, d=3.14, s="a \\"q\\" \\\\ b", t=gnap/x:y, b=:aGVsbG8=:, yes=?1, no=?0, flag;p=1',
    )
    const item = (k: string) => {
      const m = dict.get(k)!
      assert.ok(!isInnerList(m))
      return m.value
    }
    assert.deepEqual(item('i'), { type: 'integer', value: -42 })
    assert.deepEqual(item('d'), { type: 'decimal', value: 3.14 })
    assert.deepEqual(item('s'), { type: 'string', value: 'a "q" \\ b' })
    assert.deepEqual(item('t'), { type: 'token', value: 'gnap/x:y' })
    assert.deepEqual(item('b'), { type: 'bytes', value: Buffer.from('hello') })
    assert.deepEqual(item('yes'), { type: 'boolean', value: true })
    assert.deepEqual(item('no'), { type: 'boolean', value: false })
    assert.deepEqual(item('flag'), { type: 'boolean', value: true })
    assert.deepEqual(dict.get('flag')!.params.get('p'), { type: 'integer', value: 1 })
  })

  test('parameters may have spaces after the semicolon, and a later duplicate wins', () => {
    const dict = parse('a=1; x="y";z, a=2')
    assert.deepEqual([...dict.keys()], ['a'])
    const a = dict.get('a')!
    assert.ok(!isInnerList(a))
    assert.deepEqual(a.value, { type: 'integer', value: 2 })
    assert.equal(a.params.size, 0)
    assert.equal(parse('b=1; x="y";z').get('b')!.params.size, 2)
  })

  test('an empty field is an empty dictionary', () => {
    assert.equal(parse('').size, 0)
    assert.equal(parse('   ').size, 0)
  })

  test('rejects what RFC 8941 rejects', () => {
    for (const input of [
      'Sig1=:AA==:',
      'sig1=:AA==',
      'sig1=:A!A:',
      'sig1="unterminated',
      'sig1="bad \\n escape"',
      'sig1="tab\there"',
      'sig1="é"',
      'sig1=("a""b")',
      'sig1=("a" "b"',
      'sig1=1,',
      'sig1=1 sig2=2',
      'sig1=1,,sig2=2',
      'sig1=1234567890123456',
      'sig1=1234567890123.1',
      'sig1=1.1234',
      'sig1=1.',
      'sig1=-',
      'sig1=?2',
      'sig1=@x',
      'sig1=1;K=2',
      '=1',
      'garbage(((',
    ]) {
      assert.equal(parseDictionary(input), undefined, input)
    }
  })

  test('accepts the largest numbers RFC 8941 allows', () => {
    const dict = parse('i=-999999999999999, d=999999999999.999')
    assert.deepEqual(dict.get('i'), {
      value: { type: 'integer', value: -999999999999999 },
      params: new Map(),
      raw: '-999999999999999',
    })
    assert.equal((dict.get('d') as { value: { value: number } }).value.value, 999999999999.999)
  })
})
