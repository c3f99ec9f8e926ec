import { isIP } from 'node:net'

/** A network such as `10.0.0.0/8` or `fd00::/8`: its address bytes (4 or 16) and prefix length. */
export interface Network {
  bytes: Uint8Array
  prefix: number
}

function parseIPv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number))
}

/** Eight 16-bit groups, `::` expanded, a trailing dotted quad taken as the last two groups. */
function parseIPv6(text: string): Uint8Array {
  const groups = (part: string): number[] => {
    if (part === '') return []
    return part.split(':').flatMap((g) => {
      if (!g.includes('.')) return [Number.parseInt(g, 16)]
      const [a, b, c, d] = parseIPv4(g)
      return [(a! << 8) | b!, (c! << 8) | d!]
    })
  }
  const [head, tail] = text.split('::')
  const left = groups(head!)
  const right = tail === undefined ? [] : groups(tail)
  const all = [...left, ...Array(8 - left.length - right.length).fill(0), ...right]
  const bytes = new Uint8Array(16)
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8
    bytes[2 * i + 1] = g & 0xff
  })
  return bytes
}

/** The bytes of an IPv4 (4) or IPv6 (16) address; a zone (`%eth0`) is ignored; undefined if not an IP. */
export function parseIp(text: string): Uint8Array | undefined {
  const address = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '')
  const version = isIP(address)
  if (version === 4) return parseIPv4(address)
  if (version === 6) return parseIPv6(address)
  return undefined
}

/** `10.0.0.0/8`, `fd00::/8`, or a single address (a /32 or /128); undefined if malformed. */
export function parseNetwork(text: string): Network | undefined {
  const [address, prefixText, extra] = text.trim().split('/')
  const bytes = parseIp(address ?? '')
  if (!bytes || extra !== undefined) return undefined
  const max = bytes.length * 8
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined
  const prefix = prefixText === undefined ? max : Number(prefixText)
  return prefix <= max ? { bytes, prefix } : undefined
}

export function inNetwork(address: Uint8Array, network: Network): boolean {
  if (address.length !== network.bytes.length) return false
  const whole = network.prefix >> 3
  for (let i = 0; i < whole; i++) if (address[i] !== network.bytes[i]) return false
  const bits = network.prefix & 7
  if (bits === 0) return true
  const mask = (0xff << (8 - bits)) & 0xff
  return (address[whole]! & mask) === (network.bytes[whole]! & mask)
}

const net = (text: string, label: string) => ({ network: parseNetwork(text)!, label })

/** IPv4 ranges that are not public unicast (RFC 6890 and its updates), most specific first. */
const IPV4_SPECIAL = [
  net('255.255.255.255/32', 'broadcast'),
  net('0.0.0.0/8', 'unspecified'),
  net('10.0.0.0/8', 'private'),
  net('100.64.0.0/10', 'shared (CGNAT)'),
  net('127.0.0.0/8', 'loopback'),
  net('169.254.0.0/16', 'link-local'),
  net('172.16.0.0/12', 'private'),
  net('192.0.0.0/24', 'reserved'),
  net('192.0.2.0/24', 'documentation'),
  net('192.88.99.0/24', 'reserved'),
  net('192.168.0.0/16', 'private'),
  net('198.18.0.0/15', 'benchmarking'),
  net('198.51.100.0/24', 'documentation'),
  net('203.0.113.0/24', 'documentation'),
  net('224.0.0.0/4', 'multicast'),
  net('240.0.0.0/4', 'reserved'),
]

/** IPv6 forms that carry an IPv4 address, which is what is actually reached: it decides. */
const IPV6_EMBEDDING = [
  { network: parseNetwork('::ffff:0:0/96')!, label: 'IPv4-mapped', at: 12 },
  { network: parseNetwork('64:ff9b::/96')!, label: 'NAT64', at: 12 },
  { network: parseNetwork('2002::/16')!, label: '6to4', at: 2 },
]

/** IPv6 ranges that are not public unicast; everything outside 2000::/3 is refused as well. */
const IPV6_SPECIAL = [
  net('::/128', 'unspecified'),
  net('::1/128', 'loopback'),
  net('::/96', 'IPv4-compatible (deprecated)'),
  net('64:ff9b:1::/48', 'private (local NAT64)'),
  net('100::/64', 'discard'),
  net('2001::/32', 'Teredo tunnel'),
  net('2001:db8::/32', 'documentation'),
  net('fc00::/7', 'unique-local'),
  net('fe80::/10', 'link-local'),
  net('fec0::/10', 'site-local (deprecated)'),
  net('ff00::/8', 'multicast'),
]
const IPV6_GLOBAL_UNICAST = parseNetwork('2000::/3')!

/** The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 address (what a connection reaches). */
function reached(bytes: Uint8Array): { bytes: Uint8Array; via?: string } {
  if (bytes.length === 16) {
    const e = IPV6_EMBEDDING.find((e) => inNetwork(bytes, e.network))
    if (e) return { bytes: bytes.subarray(e.at, e.at + 4), via: e.label }
  }
  return { bytes }
}

function specialLabel(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return IPV4_SPECIAL.find((s) => inNetwork(bytes, s.network))?.label
  const special = IPV6_SPECIAL.find((s) => inNetwork(bytes, s.network))?.label
  if (special) return special
  return inNetwork(bytes, IPV6_GLOBAL_UNICAST) ? undefined : 'reserved'
}

/** Which addresses the server may connect to on behalf of clients and peers. */
export interface AddressPolicy {
  /** Everything may be reached (development, tests, a private network of ASEs). */
  allowPrivate: boolean
  /** Non-public networks that may be reached all the same (e.g. a peer's private range). */
  allowedNetworks: Network[]
}

/**
 * Why a connection to `address` is refused (e.g. `loopback`, `IPv4-mapped private`), or undefined
 * when it is allowed: a public unicast address, or any address under `allowPrivate`, or one in an
 * allowed network. An address inside an IPv6 form (IPv4-mapped, NAT64, 6to4) is judged by the IPv4
 * address it reaches.
 */
export function refusal(address: string, policy: AddressPolicy): string | undefined {
  const bytes = parseIp(address)
  if (!bytes) return 'not an IP address'
  if (policy.allowPrivate) return undefined
  const target = reached(bytes)
  const label = specialLabel(target.bytes)
  if (!label) return undefined
  if (policy.allowedNetworks.some((n) => inNetwork(target.bytes, n) || inNetwork(bytes, n))) {
    return undefined
  }
  return target.via ? `${target.via} ${label}` : label
}
