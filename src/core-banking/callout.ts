import type { Deps } from '../deps.ts'
import { isObject } from '../lib/is-object.ts'
import { signedHeaders } from '../webhooks/signing.ts'
import type { Hook } from './hooks.ts'

/** At most this much of core banking's answer is read; a longer one is a failure. */
const MAX_ANSWER_BYTES = 16 * 1024
const MAX_REASON_CHARS = 500

/** One callout's message: `id` is its `webhook-id` and `Idempotency-Key`, the same on a retry. */
export interface CalloutMessage {
  id: string
  type: string
  /** The message's time, part of the body, so that every attempt sends the same bytes. */
  timestamp: Date
  data: Record<string, unknown>
}

export type CalloutResult =
  | { ok: true; status: number; body: Buffer }
  | { ok: false; error: string; status?: number }

/**
 * POSTs one signed callout (Standard Webhooks headers, plus `Idempotency-Key`) to core banking.
 * Its URL is the operator's, so it is trusted to be where it is, but bounded in time (connecting,
 * the answer and reading it) and size, and redirects are not followed. Only a 2xx is success.
 * Never throws; never logs the secret or the signature.
 */
export async function sendCallout(
  deps: Deps,
  hook: Hook,
  msg: CalloutMessage,
): Promise<CalloutResult> {
  const body = JSON.stringify({
    id: msg.id,
    type: msg.type,
    timestamp: msg.timestamp.toISOString(),
    data: msg.data,
  })
  const res = await deps.outbound.operator(hook.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': 'open-payments-server-core-banking',
      'idempotency-key': msg.id,
      ...signedHeaders([hook.secret], { id: msg.id, timestamp: new Date(), body }),
    },
    body,
    timeoutMs: deps.config.coreBanking.timeoutMs,
    maxBytes: MAX_ANSWER_BYTES,
  })
  if (res.kind !== 'response') return { ok: false, error: res.reason }
  if (res.status < 200 || res.status > 299)
    return { ok: false, error: `HTTP ${res.status}`, status: res.status }
  return { ok: true, status: res.status, body: res.body }
}

/**
 * Core banking's answer to a request for approval. `unavailable`: it did not answer in time, or
 * answered something other than a 2xx with `{"decision":"approve"}` or
 * `{"decision":"decline","reason":"…"}`.
 */
export type Decision =
  | { kind: 'approved' }
  | { kind: 'declined'; reason: string }
  | { kind: 'unavailable'; reason: string }

/** Asks core banking to approve a payment (`kind` names it for metrics and logs). */
export async function askApproval(
  deps: Deps,
  hook: Hook,
  kind: 'outgoing' | 'incoming',
  msg: CalloutMessage,
): Promise<Decision> {
  const started = performance.now()
  const res = await sendCallout(deps, hook, msg)
  const decision = res.ok
    ? parseDecision(res.body)
    : { kind: 'unavailable' as const, reason: res.error }
  const seconds = (performance.now() - started) / 1000
  deps.metrics.coreBankingCallouts.inc({ kind, outcome: decision.kind })
  deps.metrics.coreBankingDuration.observe({ kind }, seconds)
  const facts = {
    callout: msg.id,
    kind,
    decision: decision.kind,
    ...(decision.kind !== 'approved' && { reason: decision.reason }),
    ms: Math.round(seconds * 1000),
  }
  if (decision.kind === 'unavailable') deps.logger.warn(facts, 'core banking did not decide')
  else deps.logger.info(facts, 'core banking decided')
  return decision
}

function parseDecision(body: Buffer): Decision {
  let answer: unknown
  try {
    answer = JSON.parse(body.toString('utf8'))
  } catch {
    return { kind: 'unavailable', reason: 'answer is not JSON' }
  }
  if (!isObject(answer)) return { kind: 'unavailable', reason: 'answer is not a JSON object' }
  if (answer.decision === 'approve') return { kind: 'approved' }
  if (answer.decision !== 'decline')
    return { kind: 'unavailable', reason: 'answer has no decision "approve" or "decline"' }
  const reason =
    typeof answer.reason === 'string' && answer.reason.trim() !== ''
      ? answer.reason.slice(0, MAX_REASON_CHARS)
      : 'declined by core banking'
  return { kind: 'declined', reason }
}
