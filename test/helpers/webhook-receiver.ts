import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

/** One request the receiver got. */
export interface Received {
  webhookId: string
  timestamp: string
  signature: string
  /** The `Idempotency-Key` header, when sent (core-banking callouts). */
  idempotencyKey?: string
  body: string
  /** The verified payload (`standardwebhooks` verify), or undefined when the signature failed. */
  payload: any
  /** This webhook-id's request number at this receiver, from 1. */
  attempt: number
  at: number
}

/** What to answer: a status (and body), or `hang` to never answer. */
export type Answer =
  | number
  | { status: number; body?: string | Buffer; headers?: Record<string, string> }
  | 'hang'

export interface Receiver {
  url: string
  /** Every request, in arrival order. */
  requests: Received[]
  /** Requests answered with a 2xx, in order: what the receiver has accepted. */
  accepted: Received[]
  /** The secrets signatures are verified with (any may match); set after the endpoint exists. */
  secrets: string[]
  answer: (r: Received) => Answer
  /** Requests being handled right now, and the most there ever were at once. */
  inFlight: number
  maxInFlight: number
  /** How long to wait before answering (ms). */
  delayMs: number
  close(): Promise<void>
}

/** A real HTTP webhook receiver on loopback that verifies every request with `standardwebhooks`. */
export async function startReceiver(answer: Receiver['answer'] = () => 200): Promise<Receiver> {
  const counts = new Map<string, number>()
  const hanging = new Set<ServerResponse>()
  const receiver: Receiver = {
    url: '',
    requests: [],
    accepted: [],
    secrets: [],
    answer,
    inFlight: 0,
    maxInFlight: 0,
    delayMs: 0,
    close: async () => {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
  const server = createServer(async (req, res) => {
    receiver.inFlight++
    receiver.maxInFlight = Math.max(receiver.maxInFlight, receiver.inFlight)
    try {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const body = Buffer.concat(chunks).toString('utf8')
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      }
      let payload: unknown
      for (const secret of receiver.secrets) {
        try {
          payload = new Webhook(secret).verify(body, headers)
          break
        } catch {}
      }
      const attempt = (counts.get(headers['webhook-id']) ?? 0) + 1
      counts.set(headers['webhook-id'], attempt)
      const received: Received = {
        webhookId: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        signature: headers['webhook-signature'],
        ...(req.headers['idempotency-key'] !== undefined && {
          idempotencyKey: String(req.headers['idempotency-key']),
        }),
        body,
        payload,
        attempt,
        at: Date.now(),
      }
      receiver.requests.push(received)
      if (receiver.delayMs > 0) await new Promise((r) => setTimeout(r, receiver.delayMs))
      const a = receiver.answer(received)
      if (a === 'hang') {
        hanging.add(res)
        res.on('close', () => hanging.delete(res))
        return
      }
      const { status, body: out, headers: extra } = typeof a === 'number' ? { status: a } : a
      if (status >= 200 && status < 300) receiver.accepted.push(received)
      res.writeHead(status, extra)
      res.end(out)
    } finally {
      receiver.inFlight--
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`
  return receiver
}
