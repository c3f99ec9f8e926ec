import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type AddressPolicy, parseNetwork, refusal } from './addresses.ts'

const deny: AddressPolicy = { allowPrivate: false, allowedNetworks: [] }

test('public unicast addresses are allowed, in every notation', () => {
  for (const address of [
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '100.63.255.255', // just below CGNAT
    '100.128.0.0', // just above
    '172.15.255.255',
    '172.32.0.0',
    '2606:4700:4700::1111',
    '2a00:1450:4001:82b::200e',
    '::ffff:8.8.8.8', // IPv4-mapped public
    '::ffff:808:808',
    '64:ff9b::808:808', // NAT64 of a public address
    '2002:808:808::1', // 6to4 of a public address
  ]) {
    assert.equal(refusal(address, deny), undefined, address)
  }
})

test('every non-public range is refused, with a reason', () => {
  const cases: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['100.127.255.255', 'shared (CGNAT)'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['fec0::1', 'site-local (deprecated)'],
    ['2001:db8::1', 'documentation'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo tunnel'],
    ['100::1', 'discard'],
    ['4000::1', 'reserved'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback'],
    ['::ffff:10.1.2.3', 'IPv4-mapped private'],
    ['::ffff:169.254.169.254', 'IPv4-mapped link-local'],
    ['::ffff:100.64.0.1', 'IPv4-mapped shared (CGNAT)'],
    ['::ffff:0.0.0.0', 'IPv4-mapped unspecified'],
    ['64:ff9b::127.0.0.1', 'NAT64 loopback'],
    ['64:ff9b::a00:1', 'NAT64 private'],
    ['64:ff9b:1::1', 'private (local NAT64)'],
    ['2002:7f00:1::1', '6to4 loopback'],
    ['2002:c0a8:101::1', '6to4 private'],
    ['::127.0.0.1', 'IPv4-compatible (deprecated)'],
    ['localhost', 'not an IP address'],
    ['', 'not an IP address'],
  ]
  for (const [address, reason] of cases) assert.equal(refusal(address, deny), reason, address)
})

test('allowPrivate allows everything; allowed networks allow just themselves', () => {
  assert.equal(refusal('127.0.0.1', { allowPrivate: true, allowedNetworks: [] }), undefined)
  const policy: AddressPolicy = {
    allowPrivate: false,
    allowedNetworks: ['10.20.0.0/16', 'fd00:1::/32', '127.0.0.2'].map((n) => parseNetwork(n)!),
  }
  assert.equal(refusal('10.20.3.4', policy), undefined)
  assert.equal(refusal('::ffff:10.20.3.4', policy), undefined)
  assert.equal(refusal('fd00:1:2::3', policy), undefined)
  assert.equal(refusal('127.0.0.2', policy), undefined)
  assert.equal(refusal('10.21.0.1', policy), 'private')
  assert.equal(refusal('127.0.0.1', policy), 'loopback')
  assert.equal(refusal('fd00:2::1', policy), 'unique-local')
})

test('networks parse strictly', () => {
  assert.deepEqual(parseNetwork('10.0.0.0/8')?.prefix, 8)
  assert.deepEqual(parseNetwork('::1')?.prefix, 128)
  assert.deepEqual(parseNetwork('1.2.3.4')?.prefix, 32)
  for (const bad of [
    '10.0.0.0/33',
    '::/129',
    '10.0.0/8',
    'example.com',
    '10.0.0.0/8/1',
    '1.2.3.4/x',
  ])
    assert.equal(parseNetwork(bad), undefined, bad)
})
