/**
 * A sample core-banking receiver (docs/core-banking.md): verifies each callout's Standard Webhooks
 * signature, approves outgoing payments up to a limit, approves every incoming payment, and books
 * posts and releases once per idempotency id. Run it next to the server:
 *
 *   CORE_BANKING_SECRET=whsec_… PORT=4000 npx tsx examples/core-banking-receiver.ts
 *
 * and start the server with CORE_BANKING_URL=http://127.0.0.1:4000/ and the same secret.
 * A real one keeps its answers in its own database, not in a Map.
 */
import { createServer } from 'node:http'
import { Webhook } from 'standardwebhooks'

/** The callouts' bodies (docs/core-banking.md), as far as this sample reads them. */
type Callout =
  | {
      type: 'outgoing_payment.approve'
      data: { outgoingPayment: { paymentId: string; debitAmount: { value: string } } }
    }
  | { type: 'incoming_payment.approve'; data: { incomingPayment: { paymentId: string } } }
  | {
      type: 'outgoing_payment.post' | 'outgoing_payment.release'
      data: { paymentId: string; postAmount: string; releaseAmount: string }
    }

/** The most one outgoing payment may debit, in the asset's smallest unit. */
const LIMIT = 1_000_000n

export function coreBankingReceiver(secret: string) {
  const webhook = new Webhook(secret)
  // Idempotency: a repeated id gets the first answer again and changes nothing.
  const answered = new Map<string, { status: number; body: string }>()

  return createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    let msg: Callout
    try {
      // Checks the signature and that the timestamp is recent (5 minutes either way).
      msg = webhook.verify(body, {
        'webhook-id': String(req.headers['webhook-id']),
        'webhook-timestamp': String(req.headers['webhook-timestamp']),
        'webhook-signature': String(req.headers['webhook-signature']),
      }) as Callout
    } catch {
      res.writeHead(401).end()
      return
    }
    const id = String(req.headers['idempotency-key'])
    const answer = answered.get(id) ?? decide(msg)
    answered.set(id, answer)
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body)
  })
}

function decide(msg: Callout): { status: number; body: string } {
  const json = (o: unknown) => ({ status: 200, body: JSON.stringify(o) })
  switch (msg.type) {
    case 'outgoing_payment.approve': {
      const debit = BigInt(msg.data.outgoingPayment.debitAmount.value)
      // Here: place a hold of `debit` on the customer's account, keyed by the payment id.
      return debit <= LIMIT
        ? json({ decision: 'approve' })
        : json({ decision: 'decline', reason: 'over the single-payment limit' })
    }
    case 'incoming_payment.approve':
      // Here: compliance screening of the receiving customer.
      return json({ decision: 'approve' })
    case 'outgoing_payment.post':
    case 'outgoing_payment.release':
      // Here: turn `postAmount` of the hold into a debit, and release `releaseAmount`.
      console.log(msg.type, msg.data.paymentId, msg.data.postAmount, msg.data.releaseAmount)
      return { status: 204, body: '' }
    default:
      return { status: 400, body: JSON.stringify({ error: 'unknown callout type' }) }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const secret = process.env.CORE_BANKING_SECRET
  if (!secret) throw new Error('set CORE_BANKING_SECRET (whsec_…), the same as the server’s')
  const port = Number(process.env.PORT ?? 4000)
  coreBankingReceiver(secret).listen(port, '127.0.0.1', () =>
    console.log(`core-banking receiver on http://127.0.0.1:${port}/`),
  )
}
