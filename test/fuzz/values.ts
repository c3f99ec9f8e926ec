import fc from 'fast-check'

/**
 * Values an attacker or a broken client sends: the building blocks of every fuzzed request.
 * `Pool` holds values that exist on the server under test (URLs, ids, asset codes), so that
 * many generated requests get past the first check and reach deeper code.
 */
export interface Pool {
  urls: string[]
  ids: string[]
  strings: string[]
}

const deep = (depth: number, open: string, close: string) =>
  open.repeat(depth) + close.repeat(depth)

/** Strings that have broken servers: NUL, control characters, lone surrogates, traversal, SQL. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '\u0001\u0002\u001f\u007f',
    '\r\n\t',
    '../../../../etc/passwd',
    '..%2F..%2Fadmin',
    "'; drop table assets; --",
    '%00',
    '%',
    '{{7*7}}',
    '<script>alert(1)</script>',
    '💸',
    'null',
    'undefined',
    '0',
    '-1',
    'NaN',
    'Infinity',
    '__proto__',
    'constructor',
    'http://127.0.0.1:1/x',
    'file:///etc/passwd',
    'javascript:alert(1)',
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 20 }),
  fc.integer({ min: 300, max: 70_000 }).map((n) => 'a'.repeat(n)),
)

/** Amount strings: valid, and every shape a uint64 decimal string must refuse. */
export const amountString: fc.Arbitrary<string> = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
  fc.constantFrom(
    '0',
    '1',
    '100',
    '-1',
    '-0',
    '1.5',
    '0.0',
    '1e3',
    '0x10',
    '0b1',
    '+5',
    ' 5',
    '5 ',
    '007',
    '18446744073709551615',
    '18446744073709551616',
    '99999999999999999999999999999999999999999999',
    '١٢٣',
  ),
  fc.bigInt({ min: 2n ** 64n, max: 2n ** 200n }).map(String),
)

/** JSON values of the wrong type for any field, including huge and deeply nested ones. */
export const nastyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    1e308,
    -1e308,
    2 ** 64,
    Number.MAX_SAFE_INTEGER + 2,
    [],
    {},
    [null],
    JSON.parse('{"__proto__":{"admin":true}}'),
    { constructor: { prototype: { x: 1 } } },
  ),
  nastyString,
  fc.integer({ min: 33, max: 3000 }).map((d) => JSON.parse(deep(d, '[', ']'))),
  fc
    .integer({ min: 33, max: 2000 })
    .map((d) => JSON.parse(`${'{"a":'.repeat(d)}1${'}'.repeat(d)}`)),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => Array.from({ length: n }, (_, i) => i)),
  fc.dictionary(nastyString, fc.constant(1), { maxKeys: 3 }),
)

type Schema = Record<string, any>

/**
 * A value for a JSON schema: mostly shaped like the schema (so it passes the outer checks), with
 * nasty values mixed in at every level, and sometimes unknown fields.
 */
export function fromSchema(
  schema: Schema | undefined,
  pool: Pool,
  depth = 0,
): fc.Arbitrary<unknown> {
  const shaped = shapedFromSchema(schema ?? {}, pool, depth)
  return fc.oneof({ weight: 4, arbitrary: shaped }, { weight: 1, arbitrary: nastyJson })
}

function shapedFromSchema(schema: Schema, pool: Pool, depth: number): fc.Arbitrary<unknown> {
  if (depth > 6) return fc.constant(null)
  if (schema.const !== undefined) return fc.constant(schema.const)
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum)
  const alternatives = schema.oneOf ?? schema.anyOf
  if (Array.isArray(alternatives) && alternatives.length > 0)
    return fc.oneof(
      ...alternatives.map((s: Schema) => fromSchema({ ...without(schema), ...s }, pool, depth + 1)),
    )
  if (Array.isArray(schema.allOf)) return shapedFromSchema(mergeAll(schema), pool, depth)
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type ?? (schema.properties ? 'object' : undefined)) {
    case 'object': {
      const props: Record<string, fc.Arbitrary<unknown>> = {}
      for (const [k, s] of Object.entries<Schema>(schema.properties ?? {}))
        props[k] = fromSchema(s, pool, depth + 1)
      const required = (schema.required ?? []).filter((k: string) => k in props)
      const record = fc.record(props, { requiredKeys: required })
      return fc.oneof(
        { weight: 5, arbitrary: record },
        {
          weight: 1,
          arbitrary: fc
            .tuple(record, nastyString, nastyJson)
            .map(([r, k, v]) => ({ ...(r as object), [k]: v })),
        },
        { weight: 1, arbitrary: fc.record(props, { requiredKeys: [] }) },
      )
    }
    case 'array':
      return fc.array(fromSchema(schema.items, pool, depth + 1), { maxLength: 4 })
    case 'integer':
    case 'number':
      return fc.oneof(
        fc.integer({ min: -5, max: 200 }),
        fc.constantFrom(0, -1, 1.5, 2 ** 53, 1e300, 255, 256),
      )
    case 'boolean':
      return fc.boolean()
    case 'string':
      return stringFor(schema, pool)
    default:
      return fc.oneof(nastyJson, fc.constantFrom(...pool.strings))
  }
}

function stringFor(schema: Schema, pool: Pool): fc.Arbitrary<string> {
  const format = schema.format as string | undefined
  const name = String(schema.title ?? schema.description ?? '').toLowerCase()
  const specific: fc.Arbitrary<string>[] = []
  if (format === 'uri' || /url|uri|wallet address|identifier|receiver|endpoint/.test(name))
    specific.push(fc.constantFrom(...pool.urls))
  if (format === 'uuid') specific.push(fc.constantFrom(...pool.ids), fc.uuid())
  if (format === 'date-time' || /time|expir/.test(name))
    specific.push(
      fc.constantFrom(
        new Date(Date.now() + 60_000).toISOString(),
        new Date(Date.now() - 60_000).toISOString(),
        '9999-12-31T23:59:59Z',
        '2024-02-30T25:61:00Z',
        '0000-01-01T00:00:00Z',
      ),
    )
  if (format === 'uint64' || /amount|value/.test(name)) specific.push(amountString)
  if (/interval/.test(name))
    specific.push(fc.constantFrom('R/2024-01-01T00:00:00Z/P1M', 'R-1/x/P0D', 'P1Y'))
  return fc.oneof(
    ...specific.map((arbitrary) => ({ weight: 4, arbitrary })),
    { weight: 2, arbitrary: fc.constantFrom(...pool.strings) },
    { weight: 1, arbitrary: amountString },
    { weight: 2, arbitrary: nastyString },
  )
}

function without(schema: Schema): Schema {
  const { oneOf: _o, anyOf: _a, ...rest } = schema
  return rest
}

function mergeAll(schema: Schema): Schema {
  const { allOf, ...rest } = schema
  const merged: Schema = {
    ...rest,
    properties: { ...(rest.properties ?? {}) },
    required: [...(rest.required ?? [])],
  }
  for (const part of allOf as Schema[]) {
    const p = part.allOf ? mergeAll(part) : part
    Object.assign(merged.properties, p.properties ?? {})
    merged.required.push(...(p.required ?? []))
    if (p.type && !merged.type) merged.type = p.type
  }
  return merged
}
