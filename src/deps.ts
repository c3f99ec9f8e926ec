import type { Logger } from 'pino'
import type { Config } from './config.ts'
import type { CoreBanking } from './core-banking/index.ts'
import type { Db } from './db/database.ts'
import type { OutageMonitor } from './db/outage.ts'
import type { IlpSender } from './ilp/sender.ts'
import type { OneAtATime } from './lib/one-at-a-time.ts'
import type { Metrics } from './metrics/metrics.ts'
import type { ServerIdentity } from './open-payments-client/identity.ts'
import type { RemoteReceivers } from './open-payments-client/remote-receivers.ts'
import type { Outbound } from './outbound/fetch.ts'
import type { RatesService } from './rates/service.ts'
import type { ClientDirectory } from './signatures/clients.ts'
import type { LocalWalletAddresses } from './wallet-addresses/local-cache.ts'

/** What route plugins and workers are given: no container, just these typed handles. */
export interface Deps {
  config: Config
  db: Db
  logger: Logger
  /** This server's wallet addresses and their keys, cached briefly (see local-cache.ts). */
  walletAddresses: LocalWalletAddresses
  /** Client keys and wallet address documents, local or remote, for signature checks. */
  clients: ClientDirectory
  /** Exchange rates for cross-currency quotes. */
  rates: RatesService
  /** The server's own client identity towards other ASEs. */
  identity: ServerIdentity
  /** Incoming payments at other ASEs, read as an Open Payments client. */
  remoteReceivers: RemoteReceivers
  /** STREAM sending (quotes by rate probe, payments) to other ASEs. */
  ilpSender: IlpSender
  /** Core-banking hooks and the incoming decisions this process knows. */
  coreBanking: CoreBanking
  /** This process's Prometheus metrics (`GET /metrics` on the admin listener). */
  metrics: Metrics
  /**
   * Every HTTP request the server sends: `untrusted` for URLs clients and peers name (no private
   * addresses in production), `operator` for URLs from configuration (rates, webhooks). Both bound
   * time and size and follow no redirects.
   */
  outbound: { untrusted: Outbound; operator: Outbound }
  /** Database outages: noted by requests and workers, logged once when they start and end. */
  outage: OutageMonitor
  /**
   * Each grant's creates of outgoing payments, one at a time in this process (by grant id). They
   * serialise on the grant's lock anyway; waiting here rather than on the lock keeps a busy grant
   * from holding every pooled connection, and PostgreSQL from waking every waiter at each commit.
   */
  grantQueue: OneAtATime
}
