import type { FastifyRequest } from 'fastify'
import { parseIp } from '../outbound/addresses.ts'

/**
 * What a client address is limited by: an IPv4 address as it is, an IPv6 address by its /64 (one
 * subscriber's usual allocation, so rotating through it does not escape a limit).
 */
export function ipKey(ip: string): string {
  const bytes = parseIp(ip)
  if (!bytes || bytes.length === 4) return ip
  const mapped = bytes.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff))
  if (mapped) return Array.from(bytes.subarray(12)).join('.')
  const groups = Array.from({ length: 4 }, (_, i) =>
    ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16),
  )
  return `${groups.join(':')}::/64`
}

/** Who a lookup is charged to before the client is known: the request's address. */
export const requesterOf = (req: FastifyRequest) => `ip:${ipKey(req.ip)}`
