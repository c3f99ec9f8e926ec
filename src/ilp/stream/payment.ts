import { setTimeout as sleep } from 'node:timers/promises'
import {
  type Connection,
  closedByReceiver,
  maxPacketFromF08,
  type Reply,
  receiverRoom,
  STREAM_ID,
} from './connection.ts'
import { FrameType } from './frames.ts'
import { type Fraction, floorTimes, type PathRate } from './rate.ts'

export interface PaymentPlan {
  /**
   * `send`: send all of `maxSource` (stopping early only at `target`); `deliver`: deliver exactly
   * `target`, spending at most `maxSource`.
   */
  type: 'send' | 'deliver'
  maxSource: bigint
  /** Most the receiver may get: the fixed amount, or what an incoming payment still accepts. */
  target?: bigint | undefined
  /** Each packet must deliver at least floor(amount × minRate). */
  minRate: Fraction
  rate: PathRate
  maxPacketAmount: bigint
  /** No packet leaves after this (the receiver's expiry), epoch ms. */
  deadline?: number | undefined
  /**
   * Once aborted, no packet leaves (the one who sends for us lost the right to): the payment ends
   * with `Aborted` as soon as the packets already out are answered.
   */
  signal?: AbortSignal | undefined
}

export interface PaymentResult {
  sent: bigint
  delivered: bigint
  error?: string
}

/** Most packets in flight at once. */
const MAX_WINDOW = 20
/** Without a Fulfill for this long, the payment gives up. */
const IDLE_TIMEOUT_MS = 10_000
/** Reject codes after which the same packet may be tried again. */
const retryable = (code: string) => code.startsWith('T') || code.startsWith('R')

/** Wakes the sending loop when a reply has been handled; a wake before the wait is not lost. */
class Signal {
  private pending = false
  private resolve: (() => void) | undefined
  notify() {
    this.pending = true
    this.resolve?.()
  }
  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms))
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.resolve = () => {
        this.pending = false
        this.resolve = undefined
        done()
      }
    })
  }
}

/**
 * Sends a STREAM payment (RFC 29) on `conn`. Packets are as large as the path takes, each with its
 * minimum delivery at the minimum rate, up to MAX_WINDOW in flight; the window halves and sending
 * backs off on T and R rejects and grows again with every Fulfill. While a whole packet's most
 * possible delivery fits twice into what is still wanted, packets go out in parallel. Near the
 * target, one at a time, each is first measured by an unfulfillable probe of its exact amount, so
 * the last packets are sized to land on the target: a receiver is never sent more than `target`,
 * whatever it would accept. Fixed send spends all of `maxSource` (less only if `target` is reached).
 */
export async function sendPayment(conn: Connection, plan: PaymentPlan): Promise<PaymentResult> {
  const { rate } = plan
  let maxPacket = plan.maxPacketAmount
  let sent = 0n
  let delivered = 0n
  let inFlight = 0
  let inFlightSource = 0n
  let inFlightMaxArrival = 0n
  let window = MAX_WINDOW
  let backoffUntil = 0
  let backoffMs = 20
  let lastProgress = Date.now()
  let error: string | undefined
  /** What the receiver said it still accepts (StreamMaxMoney), as a total delivery. */
  let receiverCap: bigint | undefined
  const signal = new Signal()
  const aborted = () => plan.signal?.aborted === true
  // An abort wakes the loop at once, not at the next reply or idle timeout.
  plan.signal?.addEventListener('abort', () => signal.notify(), { once: true })

  const target = () =>
    plan.target === undefined
      ? receiverCap
      : receiverCap === undefined
        ? plan.target
        : plan.target < receiverCap
          ? plan.target
          : receiverCap
  const minDelivery = (amount: bigint) => floorTimes(amount, plan.minRate)

  /** Adjusts limits to a reply; returns an error that ends the payment, if any. */
  const learn = (reply: Reply, amount: bigint): string | undefined => {
    if (reply.stream) {
      rate.observe(amount, reply.stream.prepareAmount)
      const room = receiverRoom(reply)
      if (room !== undefined) receiverCap = delivered + room
    }
    if (closedByReceiver(reply)) return 'ClosedByReceiver'
    if (reply.fulfilled) return undefined
    const code = reply.code ?? 'F00'
    if (code === 'F08') {
      maxPacket = maxPacketFromF08(reply, amount)
      return maxPacket > 0n ? undefined : 'ConnectorError'
    }
    if (retryable(code)) {
      window = Math.max(1, Math.floor(window / 2))
      backoffUntil = Date.now() + backoffMs
      backoffMs = Math.min(backoffMs * 2, 1000)
      return undefined
    }
    // Authentic but refused: less arrived than the minimum (the rate fell), or the receiver's own
    // limit (it sent StreamMaxMoney, which the next packet respects).
    if (reply.stream && reply.stream.prepareAmount < minDelivery(amount))
      return 'InsufficientExchangeRate'
    if (reply.stream && receiverRoom(reply) !== undefined) return undefined
    return 'ConnectorError'
  }

  const launch = (amount: bigint, min: bigint, maxArrival: bigint, expected: bigint) => {
    inFlight++
    inFlightSource += amount
    inFlightMaxArrival += maxArrival
    void conn
      .send({
        amount,
        minDelivery: min,
        fulfillable: true,
        expectedDelivery: expected,
        frames: [{ type: FrameType.StreamMoney, streamId: STREAM_ID, shares: 1n }],
      })
      .then(
        (reply) => {
          if (reply.fulfilled) {
            // A Fulfill without the receiver's word on what arrived is counted at its minimum.
            const arrived = reply.stream?.prepareAmount ?? min
            sent += amount
            delivered += arrived < min ? min : arrived
            lastProgress = Date.now()
            window = Math.min(MAX_WINDOW, window + 1)
            backoffMs = 20
            if (!reply.stream || arrived < min) error ??= 'ReceiverProtocolViolation'
          }
          const stop = learn(reply, amount)
          if (stop) error ??= stop
        },
        () => {
          error ??= 'ConnectorError'
        },
      )
      .finally(() => {
        inFlight--
        inFlightSource -= amount
        inFlightMaxArrival -= maxArrival
        signal.notify()
      })
  }

  /** The exact delivery of `amount`, by an unfulfillable probe; or why it cannot be had. */
  const measure = async (amount: bigint): Promise<bigint | 'retry' | { error: string }> => {
    const reply = await conn.send({ amount, minDelivery: 0n, fulfillable: false })
    if (reply.stream && !closedByReceiver(reply)) {
      rate.observe(amount, reply.stream.prepareAmount)
      const room = receiverRoom(reply)
      if (room !== undefined) receiverCap = delivered + room
      return reply.stream.prepareAmount
    }
    const stop = learn(reply, amount)
    return stop ? { error: stop } : 'retry'
  }

  /** The last packets: sized one at a time so that what arrives lands on `k` exactly. */
  const finish = async (
    k: bigint,
    available: bigint,
  ): Promise<'sent' | 'retry' | 'done' | { error: string }> => {
    // A fixed send may stop short of its cap; a fixed delivery must land on it.
    const unreachable = () =>
      plan.type === 'send' ? ('done' as const) : { error: 'ExactAmountUnreachable' }
    let amount = available < maxPacket ? available : maxPacket
    const fit = rate.maxSourceFor(k)
    if (fit !== undefined && fit < amount) amount = fit
    for (;;) {
      if (amount <= 0n) return unreachable()
      const arrived = await measure(amount)
      if (typeof arrived !== 'bigint') return arrived
      if (arrived > k) {
        // The path delivers more than its bounds said: look lower, by halves if need be.
        const refit = rate.maxSourceFor(k)
        amount = refit !== undefined && refit < amount ? refit : amount / 2n
        continue
      }
      if (arrived < minDelivery(amount)) return { error: 'InsufficientExchangeRate' }
      if (arrived === 0n) return unreachable()
      // The probe took a round trip: the right to send may have gone meanwhile.
      if (aborted()) return { error: 'Aborted' }
      launch(amount, arrived, arrived, arrived)
      return 'sent'
    }
  }

  while (!error) {
    if (aborted()) {
      error = 'Aborted'
      break
    }
    const now = Date.now()
    const goal = target()
    const remainingSource = plan.maxSource - sent - inFlightSource
    if (inFlight === 0) {
      if (goal !== undefined && delivered >= goal) break
      if (remainingSource <= 0n) break
      if (plan.deadline !== undefined && now >= plan.deadline) {
        error = 'ReceiverExpired'
        break
      }
    }
    if (now - lastProgress > IDLE_TIMEOUT_MS) {
      error = 'IdleTimeout'
      break
    }
    const room = goal === undefined ? undefined : goal - delivered - inFlightMaxArrival
    const blocked =
      inFlight >= window ||
      remainingSource <= 0n ||
      (room !== undefined && room <= 0n) ||
      now < backoffUntil ||
      (plan.deadline !== undefined && now >= plan.deadline)
    if (blocked) {
      if (inFlight === 0 && now < backoffUntil) await sleep(backoffUntil - now)
      else await signal.wait(inFlight === 0 ? 0 : IDLE_TIMEOUT_MS)
      continue
    }
    const amount = remainingSource < maxPacket ? remainingSource : maxPacket
    const maxArrival = rate.maxArrival(amount)
    if (room === undefined || (maxArrival !== undefined && 2n * maxArrival <= room)) {
      const min = minDelivery(amount)
      const expected = rate.minArrival(amount) ?? min
      launch(amount, min, maxArrival ?? 0n, expected > min ? expected : min)
      continue
    }
    // Close to the goal: the rest goes one exact packet at a time.
    if (inFlight > 0) {
      await signal.wait(IDLE_TIMEOUT_MS)
      continue
    }
    const outcome = await finish(room, remainingSource)
    if (outcome === 'done') break
    if (typeof outcome === 'object') error = outcome.error
    else if (outcome === 'sent') await signal.wait(IDLE_TIMEOUT_MS)
  }
  // Whatever is still out is settled before the result is final.
  while (inFlight > 0) await signal.wait(IDLE_TIMEOUT_MS * 3)
  return { sent, delivered, ...(error && { error }) }
}
