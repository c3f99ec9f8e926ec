import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** Connections of the database pool: PostgreSQL's pg.Pool, or PGlite's single session. */
export interface PoolStats {
  total: number
  idle: number
  /** Requests waiting for a connection. */
  waiting: number
  /** Statements sent since start (each a round trip), where the engine counts them (PostgreSQL). */
  statements?: number
  /** Transactions since start: explicit ones plus statements run on their own. */
  transactions?: number
  /** The shared connections' (PostgreSQL, `DATABASE_SHARED_CONNECTIONS` > 0). */
  shared?: {
    /** Statements sent on them and not answered yet. */
    inFlight: number
    /** Statements that waited for a lock past `lock_timeout` there and ran again on the pool. */
    lockTimeouts: number
    /** Transactions of a turn's writes rolled back because one of the writes failed. */
    rollbacks: number
  }
}

/** Webhook deliveries waiting to be sent, and given up on (dead letters), read when scraped. */
export interface WebhookQueueDepth {
  pending: number
  dead: number
}

/**
 * Every metric the server exports, in one registry per process (per `createDeps`), so several
 * servers in one process (the tests) keep their counts apart. Labels are bounded sets: route
 * patterns, never URLs (they carry ids); reason classes, never free text.
 */
export interface Metrics {
  registry: Registry
  httpRequests: Counter<'listener' | 'method' | 'route' | 'status'>
  httpDuration: Histogram<'listener' | 'method' | 'route'>
  outgoingCreated: Counter
  outgoingCompleted: Counter
  outgoingFailed: Counter<'reason'>
  outgoingCancelled: Counter
  /** From creation to completion of an outgoing payment. */
  outgoingCompletionSeconds: Histogram
  incomingCompleted: Counter
  /** `direction`: `incoming` answered by this server (received or forwarded), `outgoing` sent by our STREAM sender. */
  ilpFulfilled: Counter<'direction'>
  ilpRejected: Counter<'direction' | 'code'>
  settlementBookingFailures: Counter
  webhookDeliveries: Counter<'outcome'>
  /**
   * Core-banking callouts by kind (`outgoing`, `incoming`, `post`, `release`) and outcome
   * (`approved`, `declined`, `unavailable` for decisions; `delivered`, `retrying` for posts and
   * releases), and how long each took.
   */
  coreBankingCallouts: Counter<'kind' | 'outcome'>
  coreBankingDuration: Histogram<'kind'>
  /** Where the webhook queue gauge reads from; set by whoever runs the webhook outbox. */
  watchWebhookQueue(depth: () => Promise<WebhookQueueDepth>): void
}

export function createMetrics(
  opts: {
    pool?: () => PoolStats
    /** Creates of outgoing payments waiting for another under the same grant (`deps.grantQueue`). */
    waitingForGrant?: () => number
  } = {},
): Metrics {
  const registry = new Registry()
  const registers = [registry]
  let webhookQueue: (() => Promise<WebhookQueueDepth>) | undefined

  if (opts.waitingForGrant) {
    const waiting = opts.waitingForGrant
    new Gauge({
      name: 'op_outgoing_payments_waiting_for_grant',
      help: 'Creates of outgoing payments waiting in this process for another create under the same grant.',
      registers,
      collect() {
        this.set(waiting())
      },
    })
  }
  if (opts.pool) {
    const pool = opts.pool
    new Gauge({
      name: 'op_db_pool_connections',
      help: 'Database connections by state (in_use, idle).',
      labelNames: ['state'],
      registers,
      collect() {
        const s = pool()
        this.set({ state: 'in_use' }, s.total - s.idle)
        this.set({ state: 'idle' }, s.idle)
      },
    })
    new Gauge({
      name: 'op_db_pool_waiting',
      help: 'Queries waiting for a database connection.',
      registers,
      collect() {
        this.set(pool().waiting)
      },
    })
    if (pool().statements !== undefined) {
      new Counter({
        name: 'op_db_statements_total',
        help: 'Round trips to the database: statements sent, BEGIN and COMMIT included unless sent with a statement.',
        registers,
        collect() {
          this.reset()
          this.inc(pool().statements ?? 0)
        },
      })
      new Counter({
        name: 'op_db_transactions_total',
        help: 'Database transactions: explicit ones plus statements run on their own.',
        registers,
        collect() {
          this.reset()
          this.inc(pool().transactions ?? 0)
        },
      })
    }
    if (pool().shared !== undefined) {
      new Gauge({
        name: 'op_db_shared_in_flight',
        help: 'Statements sent on the shared database connections and not answered yet.',
        registers,
        collect() {
          this.set(pool().shared?.inFlight ?? 0)
        },
      })
      new Counter({
        name: 'op_db_shared_lock_timeouts_total',
        help: 'Statements that waited for a lock on a shared connection past its lock_timeout, and ran again on the pool.',
        registers,
        collect() {
          this.reset()
          this.inc(pool().shared?.lockTimeouts ?? 0)
        },
      })
      new Counter({
        name: 'op_db_shared_rollbacks_total',
        help: 'Transactions of writes sent together on a shared connection that rolled back because one write failed; each write then ran again.',
        registers,
        collect() {
          this.reset()
          this.inc(pool().shared?.rollbacks ?? 0)
        },
      })
    }
  }
  new Gauge({
    name: 'op_webhook_queue',
    help: 'Webhook deliveries by state: pending (not yet delivered) and dead (given up, dead-lettered).',
    labelNames: ['state'],
    registers,
    async collect() {
      if (!webhookQueue) return
      // An unreachable database must not fail the whole scrape (the pool gauges and /readyz say
      // so); the gauge then keeps its last value.
      const depth = await webhookQueue().catch(() => undefined)
      if (!depth) return
      this.set({ state: 'pending' }, depth.pending)
      this.set({ state: 'dead' }, depth.dead)
    },
  })

  return {
    registry,
    httpRequests: new Counter({
      name: 'op_http_requests_total',
      help: 'HTTP requests answered, by listener, method, route pattern and status.',
      labelNames: ['listener', 'method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'op_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by listener, method and route pattern.',
      labelNames: ['listener', 'method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    outgoingCreated: new Counter({
      name: 'op_outgoing_payments_created_total',
      help: 'Outgoing payments created (funds reserved).',
      registers,
    }),
    outgoingCompleted: new Counter({
      name: 'op_outgoing_payments_completed_total',
      help: 'Outgoing payments completed.',
      registers,
    }),
    outgoingFailed: new Counter({
      name: 'op_outgoing_payments_failed_total',
      help: 'Outgoing payments failed, by reason class.',
      labelNames: ['reason'],
      registers,
    }),
    outgoingCancelled: new Counter({
      name: 'op_outgoing_payments_cancelled_total',
      help: 'Outgoing payments cancelled by an operator before they started sending.',
      registers,
    }),
    outgoingCompletionSeconds: new Histogram({
      name: 'op_outgoing_payment_completion_seconds',
      help: 'Time from the creation of an outgoing payment to its completion.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    }),
    incomingCompleted: new Counter({
      name: 'op_incoming_payments_completed_total',
      help: 'Incoming payments completed: by receiving their incoming amount, or by a complete call.',
      registers,
    }),
    ilpFulfilled: new Counter({
      name: 'op_ilp_packets_fulfilled_total',
      help: 'ILP packets fulfilled: incoming (answered by this server) or outgoing (sent by it).',
      labelNames: ['direction'],
      registers,
    }),
    ilpRejected: new Counter({
      name: 'op_ilp_packets_rejected_total',
      help: 'ILP packets rejected, by direction and ILP error code.',
      labelNames: ['direction', 'code'],
      registers,
    }),
    settlementBookingFailures: new Counter({
      name: 'op_settlement_booking_failures_total',
      help: 'Failed attempts to book an outgoing payment whose money already left over Interledger (retried until booked).',
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'op_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by outcome: delivered, retrying (failed, will retry), dead (failed, dead-lettered).',
      labelNames: ['outcome'],
      registers,
    }),
    coreBankingCallouts: new Counter({
      name: 'op_core_banking_callouts_total',
      help: 'Core-banking callouts by kind (outgoing, incoming, post, release) and outcome (approved, declined, unavailable; delivered, retrying).',
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    coreBankingDuration: new Histogram({
      name: 'op_core_banking_callout_seconds',
      help: 'Duration of core-banking callouts by kind, until answered or given up.',
      labelNames: ['kind'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    watchWebhookQueue: (depth) => {
      webhookQueue = depth
    },
  }
}

/** Failure text → a bounded reason class for the `reason` label. */
export function failureClass(failure: string | null): string {
  if (failure === null) return 'unknown'
  if (failure === 'receiver closed') return 'receiver_closed'
  if (failure === 'receiver amount exceeded') return 'receiver_amount_exceeded'
  if (failure === 'reservation expired') return 'reservation_expired'
  if (failure === 'interrupted while sending') return 'interrupted'
  if (failure === 'delivered too little') return 'delivered_too_little'
  if (failure.startsWith('settlement failed')) return 'settlement_error'
  // A local receiver's core banking declined the credit, or did not answer.
  if (failure.startsWith('receiver declined') || failure.startsWith('receiver not approved'))
    return 'receiver_declined'
  // Whatever the STREAM sender reported (its error names are its own).
  return 'ilp'
}
