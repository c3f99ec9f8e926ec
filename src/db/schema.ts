import type { ColumnType, Generated } from 'kysely'

/** A column the database fills in on insert and never changes afterwards. */
type CreatedAt = ColumnType<Date, never, never>

export interface AssetsTable {
  id: string
  code: string
  scale: number
  created_at: CreatedAt
}

export type AccountKind = 'settlement' | 'wallet' | 'incoming' | 'outgoing' | 'peer' | 'fees'
export type BalanceRule = 'none' | 'debits_within_credits' | 'credits_within_debits'

export interface LedgerAccountsTable {
  id: string
  asset_id: string
  kind: AccountKind
  rule: BalanceRule
  debits_posted: Generated<bigint>
  credits_posted: Generated<bigint>
  debits_pending: Generated<bigint>
  credits_pending: Generated<bigint>
  debit_limit: bigint | null
  created_at: CreatedAt
}

export interface LedgerAccountDeltasTable {
  seq: ColumnType<bigint, never, never>
  account_id: string
  debits_posted: bigint
  credits_posted: bigint
  debits_pending: bigint
  credits_pending: bigint
}

export type TransferState = 'pending' | 'posted' | 'voided' | 'expired'

export interface LedgerTransfersTable {
  id: string
  seq: ColumnType<bigint, never, never>
  debit_account_id: string
  credit_account_id: string
  asset_id: string
  amount: bigint
  two_phase: boolean
  state: TransferState
  posted_amount: bigint | null
  expires_at: Date | null
  resolved_at: Date | null
  reference: string | null
  created_at: CreatedAt
}

export interface WalletAddressesTable {
  id: string
  path: string
  asset_id: string
  public_name: string | null
  status: Generated<'active' | 'inactive'>
  ledger_account_id: string
  created_at: CreatedAt
  updated_at: Generated<Date>
}

export interface WalletAddressKeysTable {
  id: string
  wallet_address_id: string
  kid: string
  x: string
  created_at: CreatedAt
  revoked_at: Date | null
}

export interface GrantsTable {
  id: string
  state: 'pending' | 'approved' | 'finalized'
  finalization: 'issued' | 'revoked' | 'rejected' | null
  client_wallet_address: string | null
  client_jwk: ColumnType<unknown, string | null, string | null> | null
  access: ColumnType<unknown, string, string>
  wallet_address_id: string | null
  continue_id: string
  continue_salt: string
  last_continued_at: Date | null
  interact_id: string | null
  interact_nonce: string | null
  interact_expires_at: Date | null
  finish_method: 'redirect' | null
  finish_uri: string | null
  client_nonce: string | null
  interact_session_hash: string | null
  subject_wallet_address_id: string | null
  interact_ref_hash: string | null
  subject_id: string | null
  interact_signed_in_as: string | null
  created_at: CreatedAt
  updated_at: Generated<Date>
}

export interface AccessTokensTable {
  id: string
  grant_id: string
  value_hash: string
  manage_id: string
  expires_at: Date
  revoked_at: Date | null
  created_at: CreatedAt
}

export interface IncomingPaymentsTable {
  id: string
  wallet_address_id: string
  client: string
  incoming_amount: bigint | null
  received_amount: Generated<bigint>
  completed_at: Date | null
  cancelled_at: Date | null
  cancel_reason: string | null
  expires_at: Date
  metadata: ColumnType<unknown, string | null, string | null> | null
  created_at: CreatedAt
  updated_at: Generated<Date>
  expiry_recorded_at: Date | null
  core_banking_decision: 'approved' | 'declined' | null
  core_banking_reason: string | null
}

export interface IdempotencyKeysTable {
  scope: string
  key: string
  fingerprint: string
  state: 'in_progress' | 'done'
  status: number | null
  content_type: string | null
  body: string | null
  locked_until: Date
  expires_at: Date
  created_at: CreatedAt
}

export interface FeesTable {
  asset_id: string
  fixed: bigint
  basis_points: number
  updated_at: Generated<Date>
}

export interface QuotesTable {
  id: string
  wallet_address_id: string
  client: string
  receiver: string
  receiver_incoming_payment_id: string | null
  debit_amount: bigint
  fee_amount: bigint
  receive_amount: bigint
  receive_asset_code: string
  receive_asset_scale: number
  rate_numerator: bigint
  rate_denominator: bigint
  ilp_terms: ColumnType<unknown, string | null, string | null> | null
  expires_at: Date
  created_at: CreatedAt
}

export type OutgoingPaymentState = 'sending' | 'completed' | 'failed' | 'cancelled'

export interface OutgoingPaymentsTable {
  id: string
  wallet_address_id: string
  client: string
  grant_id: string
  quote_id: string
  receiver: string
  debit_amount: bigint
  fee_amount: bigint
  receive_amount: bigint
  receive_asset_code: string
  receive_asset_scale: number
  sent_amount: Generated<bigint>
  state: OutgoingPaymentState
  failure: string | null
  attempts: Generated<number>
  next_attempt_at: Date | null
  sending_since: Date | null
  stream_outcome: 'delivered' | 'undelivered' | null
  /** The remote incoming payment's `receivedAmount` when the sending attempt began. */
  receiver_received_before: bigint | null
  metadata: ColumnType<unknown, string | null, string | null> | null
  created_at: CreatedAt
  updated_at: Generated<Date>
}

export interface OutgoingPaymentGrantsTable {
  grant_id: string
  created_at: CreatedAt
  totals_valid: Generated<boolean>
  totals_since: Date | null
  debit_total: Generated<bigint>
  /** Receive amounts by "CODE:scale", as decimal strings. */
  receive_totals: Generated<Record<string, string>>
}

export interface PeersTable {
  id: string
  name: string
  asset_id: string
  ilp_address: string
  http_endpoint: string
  outgoing_token: string
  max_packet_amount: bigint | null
  ledger_account_id: string
  created_at: CreatedAt
}

export interface PeerIncomingTokensTable {
  token_hash: string
  peer_id: string
}

export interface PeerRoutesTable {
  prefix: string
  peer_id: string
}

export interface OutgoingPacketsTable {
  id: string
  payment_id: string
  peer_id: string
  prepare: Buffer
  /** In the sender's asset. */
  amount: bigint
  /** In the peer's asset: what the peer's account is credited with on a Fulfill. */
  peer_amount: bigint
  /** What the sender expected to arrive (receiver's asset); null on packets older than 0050. */
  expected_delivery: bigint | null
  /** What the receiver's STREAM reply said arrived, once fulfilled (receiver's asset). */
  delivered: bigint | null
  fulfilled: Generated<boolean>
  created_at: CreatedAt
}

export interface WebhookEndpointsTable {
  id: string
  url: string
  description: string | null
  event_types: string[]
  secret: string
  previous_secret: string | null
  previous_secret_expires_at: Date | null
  enabled: Generated<boolean>
  created_at: CreatedAt
  updated_at: Generated<Date>
  deleted_at: Date | null
}

export interface WebhookEventsTable {
  id: string
  seq: ColumnType<bigint, never, never>
  type: string
  resource: string
  data: ColumnType<unknown, string, never>
  created_at: ColumnType<Date, never, never>
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'dead'

export interface WebhookDeliveriesTable {
  id: string
  event_id: string
  endpoint_id: string
  event_type: string
  resource: string
  event_seq: bigint
  status: Generated<WebhookDeliveryStatus>
  attempts: Generated<number>
  failures: Generated<number>
  next_attempt_at: Date | null
  retry_from: Generated<Date>
  last_attempt_at: Date | null
  last_status_code: number | null
  last_error: string | null
  delivered_at: Date | null
  created_at: CreatedAt
  updated_at: Generated<Date>
}

export interface WebhookAttemptsTable {
  id: string
  delivery_id: string
  attempt: number
  started_at: Date
  duration_ms: number
  status_code: number | null
  error: string | null
  response_excerpt: string | null
  delivered: boolean
}

export interface LowBalanceThresholdsTable {
  id: string
  wallet_address_id: string | null
  asset_id: string | null
  peer_id: string | null
  threshold: bigint
  updated_at: Generated<Date>
}

export interface ConsoleSessionsTable {
  token_hash: string
  key_fingerprint: string
  created_at: CreatedAt
  last_seen_at: Generated<Date>
  expires_at: Date
}

export interface CoreBankingHooksTable {
  asset_id: string
  url: string
  secret: string
  created_at: CreatedAt
  updated_at: Generated<Date>
}

export interface CoreBankingApprovalsTable {
  payment_id: string
  asset_id: string
  approved_at: CreatedAt
}

export interface CoreBankingCalloutsTable {
  id: string
  payment_id: string
  asset_id: string
  kind: 'post' | 'release'
  data: ColumnType<unknown, string, never>
  status: Generated<'pending' | 'delivered'>
  attempts: Generated<number>
  next_attempt_at: Date | null
  last_status_code: number | null
  last_error: string | null
  delivered_at: Date | null
  created_at: CreatedAt
}

export interface SchemaMigrationsTable {
  version: number
  name: string
  applied_at: CreatedAt
}

export interface DB {
  assets: AssetsTable
  ledger_accounts: LedgerAccountsTable
  /** A view: each account with its limit-free deltas not yet folded (migration 0018). */
  ledger_account_totals: LedgerAccountsTable
  ledger_account_deltas: LedgerAccountDeltasTable
  ledger_transfers: LedgerTransfersTable
  wallet_addresses: WalletAddressesTable
  wallet_address_keys: WalletAddressKeysTable
  grants: GrantsTable
  access_tokens: AccessTokensTable
  idempotency_keys: IdempotencyKeysTable
  incoming_payments: IncomingPaymentsTable
  fees: FeesTable
  quotes: QuotesTable
  outgoing_payments: OutgoingPaymentsTable
  outgoing_payment_grants: OutgoingPaymentGrantsTable
  peers: PeersTable
  peer_incoming_tokens: PeerIncomingTokensTable
  peer_routes: PeerRoutesTable
  outgoing_packets: OutgoingPacketsTable
  webhook_endpoints: WebhookEndpointsTable
  webhook_events: WebhookEventsTable
  webhook_deliveries: WebhookDeliveriesTable
  webhook_attempts: WebhookAttemptsTable
  low_balance_thresholds: LowBalanceThresholdsTable
  console_sessions: ConsoleSessionsTable
  core_banking_hooks: CoreBankingHooksTable
  core_banking_approvals: CoreBankingApprovalsTable
  core_banking_callouts: CoreBankingCalloutsTable
  schema_migrations: SchemaMigrationsTable
}
