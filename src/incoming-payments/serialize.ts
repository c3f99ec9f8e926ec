import type { Config } from '../config.ts'
import { toAmount } from '../resource-server/amounts.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import type { IncomingPayment } from './service.ts'

/** An incoming payment in its Open Payments shape, without payment methods. */
export function incomingPaymentJson(config: Config, ip: IncomingPayment) {
  const asset = { code: ip.assetCode, scale: ip.assetScale }
  return {
    id: `${config.openPaymentsUrl}/incoming-payments/${ip.id}`,
    walletAddress: walletAddressUrl(config, ip.walletAddressPath),
    completed: ip.completedAt !== null,
    ...(ip.incomingAmount !== null && { incomingAmount: toAmount(ip.incomingAmount, asset) }),
    receivedAmount: toAmount(ip.receivedAmount, asset),
    expiresAt: ip.expiresAt.toISOString(),
    ...(ip.metadata !== null && { metadata: ip.metadata }),
    createdAt: ip.createdAt.toISOString(),
  }
}
