import type { IlpPrepare, IlpReply } from 'ilp-packet'
import { BoundedMap } from '../lib/oldest-out.ts'

/** Enough for every packet in flight at a few thousand packets per second; replies are small. */
const MAX_ENTRIES = 10_000

interface Entry {
  reply: Promise<IlpReply>
  expiresAt: number
}

/**
 * ILP-over-HTTP in synchronous mode has no request id: when a response is lost, the peer may post
 * the same Prepare again. Remembering the reply (in flight, too) until the packet expires answers
 * such a retry with the same bytes instead of handling the packet twice. This is per process; the
 * ledger's transfer ids keep a retry on another process from crediting twice.
 */
export function createReplyCache(): (
  peerId: string,
  prepare: IlpPrepare,
  handle: () => Promise<IlpReply>,
) => Promise<IlpReply> {
  const entries = new BoundedMap<string, Entry>(MAX_ENTRIES)
  return (peerId, prepare, handle) => {
    const now = Date.now()
    const key = [
      peerId,
      prepare.executionCondition.toString('base64'),
      prepare.destination,
      prepare.amount,
      prepare.expiresAt.getTime(),
    ].join(' ')
    const hit = entries.get(key)
    if (hit && hit.expiresAt > now) return hit.reply
    // An expired entry is never answered from; it stays until it is the oldest beyond the bound
    // (entries arrive in roughly the order they expire, so the bound drops the expired first).
    const reply = handle()
    entries.delete(key)
    entries.set(key, { reply, expiresAt: prepare.expiresAt.getTime() })
    entries.trim()
    return reply
  }
}
