import type { FastifyInstance } from 'fastify'
import { paymentListRoute } from '../admin/paging.ts'
import { amount, cancelBody, dateTime, errorResponse, idParams, uuid } from '../admin/schemas.ts'
import type { Deps } from '../deps.ts'
import { transferJson, transferSchema } from '../ledger/admin-json.ts'
import { referencedTransfers } from '../ledger/history.ts'
import { HttpError, notFound } from '../lib/errors.ts'
import { getWalletAddress, type WalletAddress } from '../wallet-addresses/service.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import { cancelOutgoingPayment } from './cancel.ts'
import {
  getOutgoingPayment,
  type OutgoingPayment,
  outgoingPaymentPages,
  reservationId,
} from './service.ts'

const STATES = ['sending', 'completed', 'failed', 'cancelled'] as const

const outgoingPaymentSchema = {
  type: 'object',
  required: [
    'id',
    'url',
    'walletAddressId',
    'walletAddress',
    'state',
    'receiver',
    'assetCode',
    'assetScale',
    'debitAmount',
    'feeAmount',
    'sentAmount',
    'receiveAmount',
    'receiveAssetCode',
    'receiveAssetScale',
    'attempts',
    'grantId',
    'client',
    'quoteId',
    'reservationTransferId',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: uuid,
    url: { type: 'string', description: 'Its Open Payments id.' },
    walletAddressId: uuid,
    walletAddress: { type: 'string' },
    state: {
      type: 'string',
      enum: STATES,
      description: 'Open Payments clients see `failed: true` for failed and cancelled payments.',
    },
    failure: {
      type: 'string',
      description: 'Why it failed, or the operator’s reason when cancelled.',
    },
    receiver: { type: 'string' },
    assetCode: { type: 'string', description: 'The sender’s asset.' },
    assetScale: { type: 'integer' },
    debitAmount: { ...amount, description: 'Reserved from the sender, fee included.' },
    feeAmount: amount,
    sentAmount: { ...amount, description: 'What left for the receiver so far, fee excluded.' },
    receiveAmount: amount,
    receiveAssetCode: { type: 'string' },
    receiveAssetScale: { type: 'integer' },
    attempts: { type: 'integer', description: 'Sending attempts so far.' },
    sendingSince: { ...dateTime, description: 'When the attempt sending it now began.' },
    grantId: uuid,
    client: { type: 'string' },
    quoteId: uuid,
    reservationTransferId: {
      type: 'string',
      description: 'The ledger transfer holding the debit amount while it is sent.',
    },
    metadata: { type: 'object', additionalProperties: true },
    createdAt: dateTime,
    updatedAt: dateTime,
    transfers: {
      type: 'array',
      items: transferSchema,
      description: 'Its ledger transfers, oldest first (only on a single payment).',
    },
  },
} as const

type IdParams = { Params: { id: string } }

export function outgoingPaymentAdminRoutes(app: FastifyInstance, deps: Deps): void {
  const { db, config, metrics } = deps
  /** Renders payments, reading each sender wallet address once. */
  const render = async (payments: OutgoingPayment[]) => {
    const senders = new Map<string, WalletAddress>()
    for (const p of payments) {
      if (!senders.has(p.walletAddressId))
        senders.set(p.walletAddressId, (await getWalletAddress(db, { id: p.walletAddressId }))!)
    }
    return payments.map((p) => json(p, senders.get(p.walletAddressId)!))
  }
  const json = (p: OutgoingPayment, sender: WalletAddress) => {
    return {
      id: p.id,
      url: `${config.openPaymentsUrl}/outgoing-payments/${p.id}`,
      walletAddressId: p.walletAddressId,
      walletAddress: walletAddressUrl(config, sender.path),
      state: p.state,
      ...(p.failure !== null && { failure: p.failure }),
      receiver: p.receiver,
      assetCode: sender.assetCode,
      assetScale: sender.assetScale,
      debitAmount: p.debitAmount.toString(),
      feeAmount: p.feeAmount.toString(),
      sentAmount: p.sentAmount.toString(),
      receiveAmount: p.receiveAmount.toString(),
      receiveAssetCode: p.receiveAsset.code,
      receiveAssetScale: p.receiveAsset.scale,
      attempts: p.attempts,
      ...(p.sendingSince && { sendingSince: p.sendingSince.toISOString() }),
      grantId: p.grantId,
      client: p.client,
      quoteId: p.quoteId,
      reservationTransferId: reservationId(p.id),
      ...(p.metadata !== null && { metadata: p.metadata }),
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
    }
  }
  const withTransfers = async (p: OutgoingPayment) => ({
    ...(await render([p]))[0]!,
    transfers: (
      await referencedTransfers(db, {
        reference: `outgoing_payment:${p.id}`,
        referencePrefix: `outgoing:${p.id}:`,
      })
    ).map(transferJson),
  })

  paymentListRoute(app, db, {
    path: '/outgoing-payments',
    noun: 'outgoing payments',
    states: STATES,
    itemSchema: outgoingPaymentSchema,
    exists: async (id) => (await getOutgoingPayment(db, id)) !== undefined,
    pages: (filter) => outgoingPaymentPages(db, filter),
    render: render,
  })

  app.get<IdParams>(
    '/outgoing-payments/:id',
    {
      schema: {
        summary: 'Get an outgoing payment, with its ledger transfers',
        tags: ['outgoing payments'],
        params: idParams,
        response: { 200: outgoingPaymentSchema, 404: errorResponse },
      },
    },
    async (req) => {
      const p = await getOutgoingPayment(db, req.params.id)
      if (!p) throw notFound('outgoing payment not found')
      return withTransfers(p)
    },
  )

  app.post<IdParams & { Body: { reason: string } }>(
    '/outgoing-payments/:id/cancel',
    {
      schema: {
        summary: 'Cancel an outgoing payment that has not started sending',
        description:
          'Releases its reservation in the same transaction; it ends `cancelled` (Open Payments clients see `failed: true`) and never sends. A payment that has started sending, or has ended, is 409. Cancelling a cancelled payment returns it unchanged.',
        tags: ['outgoing payments'],
        params: idParams,
        body: cancelBody,
        response: { 200: outgoingPaymentSchema, 404: errorResponse, 409: errorResponse },
      },
    },
    async (req) => {
      const result = await cancelOutgoingPayment(db, req.params.id, req.body.reason)
      if (result === 'not_found') throw notFound('outgoing payment not found')
      if (result === 'already_sending')
        throw new HttpError(409, 'already_sending', 'the payment has started sending')
      if (result === 'wrong_state') {
        const p = (await getOutgoingPayment(db, req.params.id))!
        throw new HttpError(409, 'wrong_state', `the payment is ${p.state}`)
      }
      if (!result.replayed) metrics.outgoingCancelled.inc()
      return withTransfers(result.payment)
    },
  )
}
