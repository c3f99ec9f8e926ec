import { createHeaders } from '@interledger/http-signature-utils'
import {
  type AuthenticatedClient,
  type IncomingPaymentWithPaymentMethods,
  OpenPaymentsClientError,
  type PublicIncomingPayment,
} from '@interledger/open-payments'
import { loadSpec, responseSchema } from '../http/openapi-specs.ts'
import { createAjv } from '../http/validation.ts'
import type { Outbound } from '../outbound/fetch.ts'
import type { ServerIdentity } from './identity.ts'

/** What the server needs of the official client, to read incoming payments at other ASEs. */
export interface OpenPaymentsCalls {
  incomingPayment: Pick<AuthenticatedClient['incomingPayment'], 'get' | 'getPublic'>
  grant: Pick<AuthenticatedClient['grant'], 'request'>
}

/** An incoming payment with its methods, or a few hundred bytes of grant: generous, still bounded. */
const MAX_BODY_BYTES = 256 * 1024

/**
 * Those calls of the official client (`@interledger/open-payments`), made through the guarded
 * fetcher: the official client sends with a fetch of its own that follows redirects and reaches any
 * address, and cannot be given another. Requests are signed as the official client signs them
 * (`@interledger/http-signature-utils`), responses are validated against the official specs, and
 * failures are the official `OpenPaymentsClientError`, with the HTTP status when there is one.
 */
export async function createGuardedClient(deps: {
  identity: ServerIdentity
  outbound: Outbound
  timeoutMs: number
}): Promise<OpenPaymentsCalls> {
  const { identity, outbound, timeoutMs } = deps
  const ajv = createAjv({ coerceTypes: false })
  const rs = await loadSpec('resource-server')
  const as = await loadSpec('auth-server')
  const validIncomingPayment = ajv.compile(
    responseSchema(rs, '/incoming-payments/{id}', 'get', '200'),
  )
  const validGrant = ajv.compile(responseSchema(as, '/', 'post', '200'))

  const call = async (
    method: 'GET' | 'POST',
    target: string,
    opts: { accessToken?: string; body?: unknown; valid: (body: unknown) => boolean },
  ): Promise<unknown> => {
    // Signed as sent: the normalised URL (an origin gets its `/`), as the official client does.
    const url = URL.canParse(target) ? new URL(target).href : target
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body)
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...(opts.accessToken && { authorization: `GNAP ${opts.accessToken}` }),
    }
    // As the official client does: POSTs and requests with a token are signed.
    if (method === 'POST' || opts.accessToken) {
      const signed = await createHeaders({
        request: { method, url, headers, ...(body !== undefined && { body }) },
        privateKey: identity.privateKey,
        keyId: identity.jwk.kid,
      })
      for (const [k, v] of Object.entries(signed)) if (v !== undefined) headers[k.toLowerCase()] = v
    }
    const fail = (description: string, status?: number, code?: string) =>
      new OpenPaymentsClientError(`Error making Open Payments ${method} request`, {
        description,
        ...(status !== undefined && { status }),
        ...(code !== undefined && { code }),
      })
    const res = await outbound(url, { method, headers, body, timeoutMs, maxBytes: MAX_BODY_BYTES })
    if (res.kind !== 'response') throw fail(`${url}: ${res.reason}`)
    let json: unknown
    try {
      json = JSON.parse(res.body.toString('utf8'))
    } catch {
      json = undefined
    }
    if (res.status < 200 || res.status > 299) {
      const error = (json as { error?: { code?: unknown; description?: unknown } } | undefined)
        ?.error
      throw fail(
        typeof error?.description === 'string' ? error.description : `HTTP ${res.status}`,
        res.status,
        typeof error?.code === 'string' ? error.code : undefined,
      )
    }
    if (!opts.valid(json)) throw fail('Could not validate OpenAPI response', res.status)
    return json
  }

  return {
    incomingPayment: {
      getPublic: async ({ url }) =>
        (await call('GET', url, { valid: validIncomingPayment })) as PublicIncomingPayment,
      get: async ({ url, accessToken }) => {
        const ip = (await call('GET', url, {
          accessToken,
          valid: validIncomingPayment,
        })) as IncomingPaymentWithPaymentMethods
        // The official client's own check beyond the schema.
        const { incomingAmount, receivedAmount } = ip
        if (
          incomingAmount &&
          (incomingAmount.assetCode !== receivedAmount.assetCode ||
            incomingAmount.assetScale !== receivedAmount.assetScale)
        ) {
          throw new OpenPaymentsClientError('Could not validate incoming payment', {
            description:
              'Incoming amount asset code or asset scale does not match up received amount',
          })
        }
        return ip
      },
    },
    grant: {
      request: async ({ url }, args) =>
        (await call('POST', url, {
          body: { ...args, client: identity.walletAddressUrl },
          valid: validGrant,
        })) as Awaited<ReturnType<AuthenticatedClient['grant']['request']>>,
    },
  }
}
