/**
 * CPU time per STREAM packet sent, `@interledger/pay` against our sender, in one process: each
 * pays a fixed delivery in packets of at most 10 units through an in-process path (F08 above 10)
 * to the server's own STREAM receiver. `process.cpuUsage()` around each payment counts the sender
 * and the receiver; the receiver's own share, measured alone on the same packets, is reported too.
 */
import { randomBytes } from 'node:crypto'
import { deserializeIlpPrepare, serializeIlpReject, serializeIlpReply } from 'ilp-packet'
import * as pay from 'interledger-pay-alpha.9'
import { createStreamSender, type SendData } from '../src/ilp/sender.ts'
import { createStreamReceiver } from '../src/ilp/stream-receiver.ts'
import { parseRate } from '../src/rates/ratio.ts'

const MAX_PACKET = 10n
const usd = { code: 'USD', scale: 2 }

function localPath() {
  const receiver = createStreamReceiver({ secret: randomBytes(32), ilpAddress: 'test.bench' })
  const destination = { ...receiver.credentials('bench', usd), asset: usd }
  let fulfilled = 0
  let receiverCpuUs = 0
  const sendData: SendData = async (bytes) => {
    const prepare = deserializeIlpPrepare(bytes)
    if (BigInt(prepare.amount) > MAX_PACKET) {
      const data = Buffer.alloc(16)
      data.writeBigUInt64BE(BigInt(prepare.amount), 0)
      data.writeBigUInt64BE(MAX_PACKET, 8)
      return serializeIlpReject({ code: 'F08', triggeredBy: 'test.bench', message: '', data })
    }
    const t = process.cpuUsage()
    const reply = receiver.createReply(prepare)
    const out = serializeIlpReply('accept' in reply ? reply.accept() : reply)
    const d = process.cpuUsage(t)
    receiverCpuUs += d.user + d.system
    if (out[0] === 13) fulfilled++
    return out
  }
  return { sendData, destination, fulfilled: () => fulfilled, receiverCpuUs: () => receiverCpuUs }
}

async function measure(name: string, run: (p: ReturnType<typeof localPath>) => Promise<void>) {
  const p = localPath()
  const started = performance.now()
  const cpu = process.cpuUsage()
  await run(p)
  const used = process.cpuUsage(cpu)
  const packets = p.fulfilled()
  const total = (used.user + used.system) / 1000
  return {
    name,
    packets,
    cpuMsPerPacket: total / packets,
    receiverMsPerPacket: p.receiverCpuUs() / 1000 / packets,
    wallMs: performance.now() - started,
  }
}

/** Pays `packets` × 10 units with each sender, pay first. */
export async function measureSenderCpu(packets = { pay: 300, ours: 2000 }) {
  const viaPay = await measure('@interledger/pay 0.4.0-alpha.9', async (p) => {
    const plugin = { sendData: p.sendData }
    const destination = () => ({
      destinationAddress: p.destination.ilpAddress as never,
      sharedSecret: Buffer.from(p.destination.sharedSecret, 'base64url'),
      destinationAsset: usd,
      requestCounter: pay.Counter.from(0)!,
    })
    const quote = await pay.startQuote({
      plugin,
      destination: destination(),
      sourceAsset: usd,
      amountToDeliver: BigInt(packets.pay) * MAX_PACKET,
      slippage: 0,
    })
    const progress = await pay.pay({ plugin, destination: destination(), quote })
    if (progress.error) throw new Error(`pay: ${progress.error}`)
  })
  const sender = createStreamSender({ packetExpirySeconds: 20 })
  const ours = await measure('our STREAM sender', async (p) => {
    const terms = await sender.quote({
      sendData: p.sendData,
      destination: p.destination,
      sourceAsset: usd,
      amount: { deliver: BigInt(packets.ours) * MAX_PACKET },
      rate: parseRate('1')!,
      slippage: 0,
    })
    if ('error' in terms) throw new Error(`quote: ${terms.error}`)
    const paid = await sender.pay({ sendData: p.sendData, destination: p.destination, terms })
    if (paid.error) throw new Error(`pay: ${paid.error}`)
  })
  return [viaPay, ours]
}
