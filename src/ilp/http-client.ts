import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import {
  deserializeIlpReply,
  IlpError,
  type IlpPrepare,
  type IlpReject,
  type IlpReply,
  serializeIlpPrepare,
} from 'ilp-packet'

/** Where and how to reach a peer's ILP-over-HTTP endpoint. */
export interface IlpHttpPeer {
  httpEndpoint: string
  outgoingToken: string
}

/** How long to wait for the answer to a repeated packet, whose own expiry has passed. */
const REPEAT_TIMEOUT_MS = 5000

/** A Fulfill or Reject is a few hundred bytes; do not buffer whatever a peer sends. */
const MAX_REPLY_BYTES = 64 * 1024

// Packets to one peer reuse connections: a TCP (and TLS) handshake per packet would dominate.
const agents = {
  http: new HttpAgent({ keepAlive: true, scheduling: 'lifo' }),
  https: new HttpsAgent({ keepAlive: true, scheduling: 'lifo' }),
}

/** Rejects made here for packets that left but got no answer: the peer may have fulfilled them. */
const unanswered = new WeakSet<IlpReply>()

/**
 * Whether a packet answered with this Reject may still have arrived: it was sent, and the answer
 * never came back (a timeout, a connection lost mid-way, a server error or a garbled reply). The
 * peer may have fulfilled it meanwhile (synchronous ILP-over-HTTP has no way to tell), so a sender
 * must not count such a packet as failed until it has asked again.
 */
export const mayHaveArrived = (reply: IlpReply): boolean => unanswered.has(reply)

/**
 * Posts a Prepare to a peer (ILP-over-HTTP, synchronous mode) and returns its reply. Never throws
 * and never outlives the packet: a peer that cannot be reached gives T01, an HTTP error or a body
 * that is no ILP reply T00, no answer before `prepare.expiresAt` R00, all triggered by us; those
 * made after the packet left are marked (`mayHaveArrived`).
 */
export function sendPrepare(
  peer: IlpHttpPeer,
  prepare: IlpPrepare,
  /** Our ILP address, the `triggeredBy` of the Rejects made here. */
  ownAddress: string,
  /** Sends these exact bytes instead (a repeat of an earlier packet, asking whether it arrived). */
  repeat?: Buffer,
): Promise<IlpReply> {
  const reject = (code: IlpError, message: string, left = false): IlpReject => {
    const r = { code, triggeredBy: ownAddress, message, data: Buffer.alloc(0) }
    if (left) unanswered.add(r)
    return r
  }
  const timeLeft = repeat ? REPEAT_TIMEOUT_MS : prepare.expiresAt.getTime() - Date.now()
  if (timeLeft <= 0) {
    return Promise.resolve(reject(IlpError.R00_TRANSFER_TIMED_OUT, 'packet expired'))
  }
  let url: URL
  try {
    url = new URL(peer.httpEndpoint)
  } catch {
    return Promise.resolve(reject(IlpError.T01_PEER_UNREACHABLE, 'peer endpoint is not a URL'))
  }
  const https = url.protocol === 'https:'
  const body = repeat ?? serializeIlpPrepare(prepare)

  return new Promise((resolve) => {
    // The first outcome wins; later events (an error after a destroy) are ignored.
    const done = (reply: IlpReply) => {
      clearTimeout(timer)
      resolve(reply)
    }
    const req = (https ? httpsRequest : httpRequest)(
      url,
      {
        method: 'POST',
        agent: https ? agents.https : agents.http,
        headers: {
          authorization: `Bearer ${peer.outgoingToken}`,
          'content-type': 'application/octet-stream',
          accept: 'application/octet-stream',
          'content-length': body.length,
        },
      },
      (res) =>
        readReply(res).then((outcome) =>
          done(
            'problem' in outcome
              ? reject(IlpError.T00_INTERNAL_ERROR, outcome.problem, outcome.mayHaveArrived)
              : outcome.reply,
          ),
        ),
    )
    // Once the request is on the wire, a lost connection says nothing about the packet's fate.
    let left = false
    req.on('finish', () => {
      left = true
    })
    req.on('error', (err: NodeJS.ErrnoException) =>
      done(
        reject(IlpError.T01_PEER_UNREACHABLE, `peer unreachable: ${err.code ?? err.message}`, left),
      ),
    )
    const timer = setTimeout(() => {
      done(
        reject(
          IlpError.R00_TRANSFER_TIMED_OUT,
          'peer did not answer before the packet expired',
          true,
        ),
      )
      req.destroy()
    }, timeLeft)
    req.end(body)
  })
}

type Outcome = { reply: IlpReply } | { problem: string; mayHaveArrived: boolean }

/**
 * The peer's reply, or why it is not one. Only a 4xx refusal (bad token, bad request) means the
 * packet was not taken; a server error or a broken reply leaves its fate open.
 */
function readReply(res: IncomingMessage): Promise<Outcome> {
  return new Promise((resolve) => {
    const fail = (problem: string) => resolve({ problem, mayHaveArrived: true })
    const status = res.statusCode ?? 0
    if (status !== 200) {
      res.resume()
      const refused = status >= 400 && status < 500
      return resolve({ problem: `peer answered HTTP ${status}`, mayHaveArrived: !refused })
    }
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_REPLY_BYTES) {
        // Also closes the connection, which cannot be reused mid-body.
        res.destroy()
        return fail('peer reply too large')
      }
      chunks.push(chunk)
    })
    res.on('end', () => {
      try {
        resolve({ reply: deserializeIlpReply(Buffer.concat(chunks)) })
      } catch {
        fail('peer reply is not an ILP Fulfill or Reject')
      }
    })
    res.on('error', () => fail('peer reply interrupted'))
  })
}
