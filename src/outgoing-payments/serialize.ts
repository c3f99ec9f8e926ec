import type { Config } from '../config.ts'
import { toAmount } from '../resource-server/amounts.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import type { OutgoingPayment } from './service.ts'

/** The sending wallet address, as far as a payment's Open Payments shape needs it. */
export interface Sender {
  path: string
  assetCode: string
  assetScale: number
}

/** An outgoing payment in its Open Payments shape. */
export function outgoingPaymentJson(config: Config, p: OutgoingPayment, sender: Sender) {
  const debitAsset = { code: sender.assetCode, scale: sender.assetScale }
  return {
    id: `${config.openPaymentsUrl}/outgoing-payments/${p.id}`,
    walletAddress: walletAddressUrl(config, sender.path),
    quoteId: `${config.openPaymentsUrl}/quotes/${p.quoteId}`,
    // A cancelled payment did not pay either; the spec has no other way to say so.
    failed: p.state === 'failed' || p.state === 'cancelled',
    receiver: p.receiver,
    receiveAmount: toAmount(p.receiveAmount, p.receiveAsset),
    debitAmount: toAmount(p.debitAmount, debitAsset),
    sentAmount: toAmount(p.sentAmount, debitAsset),
    ...(p.metadata !== null && { metadata: p.metadata }),
    createdAt: p.createdAt.toISOString(),
  }
}
