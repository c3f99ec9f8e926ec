import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { describe, test } from 'node:test'
import { createHeaders, validateSignature } from '@interledger/http-signature-utils'
import { type Jwk, toJwk } from '../wallet-addresses/keys.ts'
import {
  type KeyLookup,
  type SignatureFailureReason,
  type SignedRequest,
  targetUri,
  verifySignature,
} from './verify.ts'

const keyPair = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, x: publicKey.export({ format: 'jwk' }).x! }
}
const client = keyPair()
const jwk = toJwk('k1', client.x)
const lookup: KeyLookup = async (kid) => (kid === 'k1' ? jwk : 'unknown_key')

const TARGET = 'https://rs.example/incoming-payments'
const BODY = JSON.stringify({ walletAddress: 'https://rs.example/alice', incomingAmount: null })
const now = () => Math.floor(Date.now() / 1000)

type Headers = Record<string, string | string[]>

/** A request signed by the helper the official Open Payments client uses. */
async function official(opts: {
  method: string
  url?: string
  authorization?: string
  body?: string
}): Promise<SignedRequest & { headers: Headers }> {
  const url = opts.url ?? TARGET
  // The client sends these on every request, body or not.
  const headers: Record<string, string> = {
    accept: 'application/json',
    'content-type': 'application/json',
    ...(opts.authorization && { authorization: opts.authorization }),
  }
  const signed = await createHeaders({
    request: { method: opts.method, url, headers, body: opts.body },
    privateKey: client.privateKey,
    keyId: 'k1',
  })
  return {
    method: opts.method,
    targetUri: url,
    headers: {
      ...headers,
      ...(opts.body === undefined && opts.method === 'POST' && { 'content-length': '0' }),
      ...Object.fromEntries(Object.entries(signed).map(([k, v]) => [k.toLowerCase(), v])),
    },
    rawBody: opts.body === undefined ? undefined : Buffer.from(opts.body),
  }
}

/** Our own RFC 9421 signer, for what the official helper never sends. */
function signed(opts: {
  components: string[]
  params?: string
  label?: string
  method?: string
  url?: string
  headers?: Headers
  body?: string
  key?: KeyObject
  /** Values of derived components other than @method and @target-uri. */
  values?: Record<string, string>
}): SignedRequest & { headers: Headers } {
  const method = opts.method ?? 'POST'
  const url = opts.url ?? TARGET
  const headers: Headers = { ...opts.headers }
  if (opts.body !== undefined) {
    headers['content-digest'] ??= `sha-512=:${digest('sha512', opts.body)}:`
    headers['content-length'] = String(Buffer.byteLength(opts.body))
  }
  const value = (name: string) => {
    if (name === '@method') return method
    if (name === '@target-uri') return url
    if (name.startsWith('@')) return opts.values?.[name]
    const h = headers[name]
    return Array.isArray(h) ? h.map((v) => v.trim()).join(', ') : h?.trim()
  }
  const params = `(${opts.components.map((c) => `"${c}"`).join(' ')})${
    opts.params ?? `;keyid="k1";created=${now()}`
  }`
  const base = [
    ...opts.components.map((c) => `"${c}": ${value(c)}`),
    `"@signature-params": ${params}`,
  ].join('\n')
  const label = opts.label ?? 'sig1'
  const signature = sign(null, Buffer.from(base), opts.key ?? client.privateKey).toString('base64')
  return {
    method,
    targetUri: url,
    headers: {
      ...headers,
      'signature-input': `${label}=${params}`,
      signature: `${label}=:${signature}:`,
    },
    rawBody: opts.body === undefined ? undefined : Buffer.from(opts.body),
  }
}

const digest = (algorithm: string, body: string) =>
  createHash(algorithm).update(body).digest('base64')

const assertOk = async (req: SignedRequest) => {
  const result = await verifySignature(req, lookup)
  assert.deepEqual(result, { ok: true, keyId: 'k1' })
}

const assertFails = async (
  req: SignedRequest,
  reason: SignatureFailureReason,
  opts?: Parameters<typeof verifySignature>[2],
) => {
  const result = await verifySignature(req, lookup, opts)
  assert.ok(!result.ok, 'expected a failure')
  assert.equal(result.reason, reason, result.message)
  assert.ok(result.message.length > 0 && result.message.length < 80)
}

describe('requests signed by @interledger/http-signature-utils', () => {
  test('POST with body and Authorization verifies', async () => {
    const req = await official({ method: 'POST', authorization: 'GNAP tok', body: BODY })
    assert.match(String(req.headers['signature-input']), /"content-digest"/)
    await assertOk(req)
  })

  test('GET with Authorization verifies', async () => {
    await assertOk(await official({ method: 'GET', url: `${TARGET}/1`, authorization: 'GNAP tok' }))
  })

  test('body-less POST verifies, with and without Authorization', async () => {
    await assertOk(await official({ method: 'POST', url: 'https://auth.example/' }))
    await assertOk(
      await official({
        method: 'POST',
        url: 'https://auth.example/token/1',
        authorization: 'GNAP t',
      }),
    )
  })

  test('DELETE with a query string verifies', async () => {
    const url = `${TARGET}?first=10&cursor=a%2Fb`
    await assertOk(await official({ method: 'DELETE', url, authorization: 'GNAP tok' }))
  })

  test("the helpers' own validator agrees", async () => {
    const req = await official({ method: 'POST', authorization: 'GNAP tok', body: BODY })
    const asHelper = { url: req.targetUri, method: req.method, headers: req.headers, body: BODY }
    assert.equal(await validateSignature(jwk, asHelper), true)
    assert.equal(await validateSignature(jwk, { ...asHelper, method: 'PUT' }), false)
    await assertFails({ ...req, method: 'PUT' }, 'invalid_signature')
  })

  test('a changed method or target URI is an invalid signature', async () => {
    const req = await official({ method: 'POST', authorization: 'GNAP tok', body: BODY })
    await assertFails({ ...req, method: 'PUT' }, 'invalid_signature')
    await assertFails({ ...req, targetUri: `${TARGET}?x=1` }, 'invalid_signature')
    await assertFails(
      { ...req, targetUri: 'https://other.example/incoming-payments' },
      'invalid_signature',
    )
  })

  test('a tampered body fails its digest', async () => {
    const req = await official({ method: 'POST', authorization: 'GNAP tok', body: BODY })
    await assertFails(
      { ...req, rawBody: Buffer.from(BODY.replace('alice', 'mallory')) },
      'digest_mismatch',
    )
  })

  test('a changed Authorization header is an invalid signature', async () => {
    const req = await official({ method: 'GET', authorization: 'GNAP tok' })
    await assertFails(
      { ...req, headers: { ...req.headers, authorization: 'GNAP other' } },
      'invalid_signature',
    )
  })

  test('another key, an unknown kid, or unavailable keys fail', async () => {
    const req = await official({ method: 'GET', authorization: 'GNAP tok' })
    const other = toJwk('k1', keyPair().x)
    assert.deepEqual(await verifySignature(req, async () => other), {
      ok: false,
      reason: 'invalid_signature',
      message: 'provided signature is invalid',
    })
    const unknown = await verifySignature(req, async () => 'unknown_key')
    assert.equal(!unknown.ok && unknown.reason, 'unknown_key')
    const unavailable = await verifySignature(req, async () => 'keys_unavailable')
    assert.equal(!unavailable.ok && unavailable.reason, 'keys_unavailable')
    const rsa = { ...jwk, kty: 'RSA' } as unknown as Jwk
    const notEd25519 = await verifySignature(req, async () => rsa)
    assert.equal(!notEd25519.ok && notEd25519.reason, 'invalid_signature')
  })

  test('a malformed or small-order key, or a signature of another length, is an invalid signature', async () => {
    const req = await official({ method: 'GET', authorization: 'GNAP tok' })
    const invalid = { ok: false, reason: 'invalid_signature' }
    const withKey = async (x: string) => {
      const r = await verifySignature(req, async () => ({ ...jwk, x }))
      return { ok: r.ok, reason: !r.ok && r.reason }
    }
    assert.deepEqual(await withKey(client.x.slice(0, -1)), invalid) // 31.x bytes
    assert.deepEqual(await withKey(`${client.x}A`), invalid) // 33 bytes
    assert.deepEqual(await withKey(`${client.x.slice(0, -1)}=`), invalid) // not base64url
    // The identity point: every signature "verifies" under it without the small-order check.
    assert.deepEqual(await withKey(`AQ${'A'.repeat(41)}`), invalid)
    const [label, value] = (req.headers.signature as string).split('=:')
    const sig = Buffer.from(value!.slice(0, -1), 'base64')
    for (const bytes of [sig.subarray(0, 63), Buffer.concat([sig, Buffer.from([0])])]) {
      const headers = { ...req.headers, signature: `${label}=:${bytes.toString('base64')}:` }
      const r = await verifySignature({ ...req, headers }, lookup)
      assert.deepEqual({ ok: r.ok, reason: !r.ok && r.reason }, invalid)
    }
    await assertOk(req)
  })
  test('the key is looked up by keyid', async () => {
    const seen: string[] = []
    const req = await official({ method: 'GET', authorization: 'GNAP tok' })
    await verifySignature(req, async (kid) => {
      seen.push(kid)
      return jwk
    })
    assert.deepEqual(seen, ['k1'])
    const renamed = signed({
      components: ['@method', '@target-uri'],
      params: `;keyid="k2";created=${now()}`,
    })
    await assertFails(renamed, 'unknown_key')
  })
})

describe('other signers', () => {
  const base = ['@method', '@target-uri']

  test('parameters in any order verify', async () => {
    await assertOk(signed({ components: base, params: `;created=${now()};keyid="k1"` }))
  })

  test('any label verifies', async () => {
    await assertOk(signed({ components: base, label: 'sig2' }))
    await assertOk(signed({ components: base, label: 'client-sig.1' }))
  })

  test('alg="ed25519", tag, nonce and expires verify', async () => {
    const t = now()
    await assertOk(signed({ components: base, params: `;keyid="k1";created=${t};alg="ed25519"` }))
    await assertOk(signed({ components: base, params: `;keyid="k1";created=${t};tag="gnap"` }))
    await assertOk(signed({ components: base, params: `;nonce="n-1";keyid="k1";created=${t}` }))
    await assertOk(
      signed({ components: base, params: `;keyid="k1";created=${t};expires=${t + 60}` }),
    )
  })

  test('another alg is refused', async () => {
    const params = `;keyid="k1";created=${now()};alg="rsa-pss-sha512"`
    await assertFails(signed({ components: base, params }), 'malformed')
  })

  test('components in any order, with extra headers, verify', async () => {
    const headers = { authorization: 'GNAP tok', 'content-type': 'application/json' }
    await assertOk(
      signed({
        components: ['content-type', 'content-digest', 'authorization', '@target-uri', '@method'],
        headers,
        body: BODY,
      }),
    )
  })

  test('derived components take their values from the target URI as sent', async () => {
    const values = {
      '@authority': 'rs.example:8443',
      '@scheme': 'https',
      '@path': '/a%20b/./c',
      '@query': '?x=1&y=%41',
      '@request-target': '/a%20b/./c?x=1&y=%41',
    }
    const url = 'https://RS.example:8443/a%20b/./c?x=1&y=%41'
    await assertOk(signed({ components: [...base, ...Object.keys(values)], url, values }))
  })

  test('an absent query is "?" and an empty path is "/"', async () => {
    const values = { '@query': '?', '@path': '/', '@authority': 'rs.example' }
    const url = 'https://rs.example:443'
    await assertOk(signed({ components: [...base, ...Object.keys(values)], url, values }))
  })

  test('header instances are trimmed and joined', async () => {
    const headers = { 'x-list': [' a ', 'b'], authorization: 'GNAP tok' }
    const req = signed({
      components: ['@method', '@target-uri', 'authorization', 'x-list'],
      headers,
    })
    assert.match(req.headers['signature-input'] as string, /x-list/)
    await assertOk(req)
    await assertOk({ ...req, headers: { ...req.headers, 'x-list': 'a, b' } })
  })

  test('several signatures: one that meets every rule is enough', async () => {
    const good = signed({ components: base, label: 'sig2' })
    const bad = signed({ components: base, label: 'sig1', key: keyPair().privateKey })
    const both = {
      ...good,
      headers: {
        ...good.headers,
        'signature-input': `${bad.headers['signature-input']}, ${good.headers['signature-input']}`,
        signature: `${bad.headers.signature}, ${good.headers.signature}`,
      },
    }
    await assertOk(both)
    const onlyBad = {
      ...both,
      headers: { ...both.headers, signature: `${bad.headers.signature}, sig2=:AAAA:` },
    }
    await assertFails(onlyBad, 'invalid_signature')
  })

  test('more than five signatures are refused', async () => {
    const req = signed({ components: base })
    const input = req.headers['signature-input'] as string
    const others = [2, 3, 4, 5, 6].map((i) => input.replace('sig1=', `sig${i}=`))
    const withInputs = (inputs: string[]) => ({
      ...req,
      headers: { ...req.headers, 'signature-input': inputs.join(', ') },
    })
    await assertOk(withInputs([input, ...others.slice(0, 4)]))
    await assertFails(withInputs([input, ...others]), 'malformed')
  })
})

describe('content digests', () => {
  const components = ['@method', '@target-uri', 'content-digest']

  test('sha-256 verifies and a wrong one fails', async () => {
    await assertOk(
      signed({
        components,
        body: BODY,
        headers: { 'content-digest': `sha-256=:${digest('sha256', BODY)}:` },
      }),
    )
    const wrong = signed({
      components,
      body: BODY,
      headers: { 'content-digest': `sha-256=:${digest('sha256', 'x')}:` },
    })
    await assertFails(wrong, 'digest_mismatch')
  })

  test('every supported digest must match; unknown algorithms are ignored', async () => {
    const sha256 = `sha-256=:${digest('sha256', BODY)}:`
    const sha512 = `sha-512=:${digest('sha512', BODY)}:`
    const md5 = `md5=:${digest('md5', 'whatever')}:`
    await assertOk(
      signed({
        components,
        body: BODY,
        headers: { 'content-digest': `${md5}, ${sha256}, ${sha512}` },
      }),
    )
    const badSha512 = `sha-512=:${digest('sha512', 'x')}:`
    await assertFails(
      signed({ components, body: BODY, headers: { 'content-digest': `${sha256}, ${badSha512}` } }),
      'digest_mismatch',
    )
    await assertFails(
      signed({ components, body: BODY, headers: { 'content-digest': md5 } }),
      'digest_mismatch',
    )
    await assertFails(
      signed({ components, body: BODY, headers: { 'content-digest': 'sha-256="abc"' } }),
      'malformed',
    )
  })

  test('the raw bytes are checked, not re-serialised JSON', async () => {
    const spaced = '{ "a": 1 }'
    const req = signed({
      components,
      body: spaced,
      headers: {
        'content-digest': `sha-512=:${digest('sha512', JSON.stringify(JSON.parse(spaced)))}:`,
      },
    })
    await assertFails(req, 'digest_mismatch')
  })

  test('a covered Content-Digest without a body is checked against the empty body', async () => {
    await assertOk(
      signed({ components, headers: { 'content-digest': `sha-256=:${digest('sha256', '')}:` } }),
    )
  })
})

describe('required coverage', () => {
  test('authorization must be covered when present', async () => {
    const req = signed({
      components: ['@method', '@target-uri'],
      headers: { authorization: 'GNAP tok' },
    })
    await assertFails(req, 'missing_component')
  })

  test('content-digest must be covered when there is a body', async () => {
    await assertFails(
      signed({ components: ['@method', '@target-uri'], body: BODY }),
      'missing_component',
    )
  })

  test('a body whose bytes were not kept (a form) must be covered, and its digest fails', async () => {
    const form = 'interact_ref=abc'
    // As the route sees a form body: the length declared, no raw bytes.
    const uncovered = signed({ components: ['@method', '@target-uri'], body: form })
    await assertFails({ ...uncovered, rawBody: undefined }, 'missing_component')
    const chunked = signed({ components: ['@method', '@target-uri'] })
    await assertFails(
      { ...chunked, headers: { ...chunked.headers, 'transfer-encoding': 'chunked' } },
      'missing_component',
    )
    const covered = signed({ components: ['@method', '@target-uri', 'content-digest'], body: form })
    await assertFails({ ...covered, rawBody: undefined }, 'digest_mismatch')
  })

  test('@method and @target-uri must be covered', async () => {
    await assertFails(signed({ components: ['@method'] }), 'missing_component')
    await assertFails(signed({ components: ['@target-uri'] }), 'missing_component')
  })

  test('a covered header must be present', async () => {
    const req = signed({
      components: ['@method', '@target-uri', 'x-extra'],
      headers: { 'x-extra': '1' },
    })
    const { 'x-extra': _, ...headers } = req.headers
    await assertFails({ ...req, headers }, 'missing_component')
  })

  test('a body-less request without Content-Digest is fine', async () => {
    await assertOk({
      ...signed({ components: ['@method', '@target-uri'] }),
      rawBody: Buffer.alloc(0),
    })
  })
})

describe('freshness', () => {
  const at = (created: number, extra = '') =>
    signed({
      components: ['@method', '@target-uri'],
      params: `;keyid="k1";created=${created}${extra}`,
    })

  test('created within the window verifies', async () => {
    await assertOk(at(now() - 290))
    await assertOk(at(now() + 50))
  })

  test('an old or future created is stale', async () => {
    await assertFails(at(now() - 301), 'stale')
    await assertFails(at(now() + 120), 'stale')
    await assertFails(at(now() - 30), 'stale', { maxAgeSeconds: 10 })
    await assertFails(at(now() + 5), 'stale', { maxFutureSkewSeconds: 0 })
  })

  test('the clock can be given', async () => {
    const req = at(1_700_000_000)
    const result = await verifySignature(req, lookup, { now: new Date(1_700_000_100_000) })
    assert.deepEqual(result, { ok: true, keyId: 'k1' })
  })

  test('a past expires is stale', async () => {
    await assertFails(at(now() - 10, `;expires=${now() - 1}`), 'stale')
  })
})

describe('malformed and missing headers', () => {
  const good = () => signed({ components: ['@method', '@target-uri'] })
  const withHeaders = (headers: Headers) => {
    const req = good()
    return { ...req, headers: { ...req.headers, ...headers } }
  }

  test('missing Signature or Signature-Input', async () => {
    const req = good()
    const { signature, 'signature-input': input, ...rest } = req.headers
    await assertFails({ ...req, headers: { ...rest, signature } }, 'missing_headers')
    await assertFails({ ...req, headers: { ...rest, 'signature-input': input } }, 'missing_headers')
    await assertFails({ ...req, headers: rest }, 'missing_headers')
    await assertFails(withHeaders({ signature: '' }), 'missing_headers')
    await assertFails(withHeaders({ 'signature-input': ' ' }), 'missing_headers')
  })

  test('garbage is malformed', async () => {
    await assertFails(withHeaders({ 'signature-input': 'garbage(((' }), 'malformed')
    await assertFails(withHeaders({ signature: 'sig1=:abc' }), 'malformed')
    await assertFails(withHeaders({ signature: 'SIG1=:abc:' }), 'malformed')
    await assertFails(withHeaders({ signature: 'sig1="not bytes"' }), 'malformed')
    await assertFails(withHeaders({ signature: 'other=:AAAA:' }), 'malformed')
    await assertFails(withHeaders({ 'signature-input': 'sig1="@method"' }), 'malformed')
  })

  test('bad component identifiers are malformed', async () => {
    const t = `;keyid="k1";created=${now()}`
    for (const input of [
      `sig1=(@method "@target-uri")${t}`,
      `sig1=("@method" "@target-uri" content-type)${t}`,
      `sig1=("@Method" "@target-uri")${t}`,
      `sig1=("@method" "@target-uri" "@query-param";name="x")${t}`,
      `sig1=("@method" "@target-uri" "@status")${t}`,
      `sig1=("@method" "@target-uri" "authorization";sf)${t}`,
      `sig1=("@method" "@target-uri" "@method")${t}`,
    ]) {
      await assertFails(withHeaders({ 'signature-input': input }), 'malformed')
    }
  })

  test('keyid and created are required', async () => {
    const c = '("@method" "@target-uri")'
    await assertFails(withHeaders({ 'signature-input': `sig1=${c};created=${now()}` }), 'malformed')
    await assertFails(withHeaders({ 'signature-input': `sig1=${c};keyid="k1"` }), 'malformed')
    await assertFails(
      withHeaders({ 'signature-input': `sig1=${c};keyid=k1;created=${now()}` }),
      'malformed',
    )
    await assertFails(
      withHeaders({ 'signature-input': `sig1=${c};keyid="k1";created="1"` }),
      'malformed',
    )
  })
})

test('targetUri joins the public origin and the raw request target', () => {
  assert.equal(
    targetUri('https://rs.example', '/incoming-payments?a=%2F&b= c'),
    'https://rs.example/incoming-payments?a=%2F&b= c',
  )
  assert.equal(targetUri('https://as.example', '/'), 'https://as.example/')
})
