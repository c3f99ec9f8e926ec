import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMetrics, failureClass } from './metrics.ts'

test('each registry counts on its own: two servers in one process do not share counts', async () => {
  const one = createMetrics()
  const two = createMetrics()
  one.outgoingCreated.inc()
  one.outgoingCreated.inc()
  two.outgoingCreated.inc()
  assert.match(await one.registry.metrics(), /^op_outgoing_payments_created_total 2$/m)
  assert.match(await two.registry.metrics(), /^op_outgoing_payments_created_total 1$/m)
})

test('the webhook queue gauge reads its source when scraped; delivery outcomes count by label', async () => {
  const metrics = createMetrics()
  assert.doesNotMatch(await metrics.registry.metrics(), /^op_webhook_queue\{/m)
  let pending = 3
  metrics.watchWebhookQueue(async () => ({ pending, dead: 1 }))
  metrics.webhookDeliveries.inc({ outcome: 'delivered' })
  metrics.webhookDeliveries.inc({ outcome: 'retrying' })
  metrics.webhookDeliveries.inc({ outcome: 'retrying' })
  let text = await metrics.registry.metrics()
  assert.match(text, /^op_webhook_queue\{state="pending"\} 3$/m)
  assert.match(text, /^op_webhook_queue\{state="dead"\} 1$/m)
  assert.match(text, /^op_webhook_deliveries_total\{outcome="retrying"\} 2$/m)
  pending = 0
  text = await metrics.registry.metrics()
  assert.match(text, /^op_webhook_queue\{state="pending"\} 0$/m)
  // A failing source keeps the last values rather than failing the scrape.
  metrics.watchWebhookQueue(async () => {
    throw new Error('database unreachable')
  })
  text = await metrics.registry.metrics()
  assert.match(text, /^op_webhook_queue\{state="pending"\} 0$/m)
})

test('pool gauges read the pool when scraped', async () => {
  const stats = { total: 5, idle: 2, waiting: 4 }
  const metrics = createMetrics({ pool: () => stats })
  const text = await metrics.registry.metrics()
  assert.match(text, /^op_db_pool_connections\{state="in_use"\} 3$/m)
  assert.match(text, /^op_db_pool_connections\{state="idle"\} 2$/m)
  assert.match(text, /^op_db_pool_waiting 4$/m)
})

test("the grant queue's gauge reads the queue when scraped", async () => {
  let waiting = 3
  const metrics = createMetrics({ waitingForGrant: () => waiting })
  assert.match(await metrics.registry.metrics(), /^op_outgoing_payments_waiting_for_grant 3$/m)
  waiting = 0
  assert.match(await metrics.registry.metrics(), /^op_outgoing_payments_waiting_for_grant 0$/m)
})

test('failure reasons fall into a bounded set of classes', () => {
  assert.equal(failureClass('receiver closed'), 'receiver_closed')
  assert.equal(failureClass('receiver amount exceeded'), 'receiver_amount_exceeded')
  assert.equal(failureClass('reservation expired'), 'reservation_expired')
  assert.equal(failureClass('interrupted while sending'), 'interrupted')
  assert.equal(failureClass('delivered too little'), 'delivered_too_little')
  assert.equal(failureClass('settlement failed 8 times'), 'settlement_error')
  assert.equal(failureClass('receiver declined: sanctions screening'), 'receiver_declined')
  assert.equal(
    failureClass('receiver not approved: core banking did not answer'),
    'receiver_declined',
  )
  assert.equal(failureClass('ConnectorError'), 'ilp')
  assert.equal(failureClass(null), 'unknown')
})
