-- Quotes, outgoing payments, their grant spending locks, and sending fees.

-- Each asset gets an outgoing clearing account (reservations of payments in flight) and a fees
-- account next to its settlement account; assets created before this migration get them here.
CREATE UNIQUE INDEX ledger_accounts_singleton_per_asset ON ledger_accounts (asset_id, kind)
  WHERE kind IN ('settlement', 'outgoing', 'fees');
INSERT INTO ledger_accounts (id, asset_id, kind, rule)
  SELECT gen_random_uuid(), a.id, k.kind, 'debits_within_credits'
    FROM assets a CROSS JOIN (VALUES ('outgoing'), ('fees')) AS k (kind)
   WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts l WHERE l.asset_id = a.id AND l.kind = k.kind);

CREATE TABLE fees (
  asset_id uuid PRIMARY KEY REFERENCES assets (id),
  fixed numeric(20, 0) NOT NULL DEFAULT 0 CHECK (fixed >= 0 AND fixed <= 18446744073709551615),
  basis_points integer NOT NULL DEFAULT 0 CHECK (basis_points BETWEEN 0 AND 10000),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE quotes (
  id uuid PRIMARY KEY,
  wallet_address_id uuid NOT NULL REFERENCES wallet_addresses (id),
  client text NOT NULL,
  receiver text NOT NULL,
  receiver_incoming_payment_id uuid REFERENCES incoming_payments (id),
  -- In the sender's asset, fees included.
  debit_amount numeric(20, 0) NOT NULL CHECK (debit_amount > 0 AND debit_amount <= 18446744073709551615),
  fee_amount numeric(20, 0) NOT NULL CHECK (fee_amount >= 0 AND fee_amount < debit_amount),
  -- In the receiver's asset.
  receive_amount numeric(20, 0) NOT NULL CHECK (receive_amount > 0 AND receive_amount <= 18446744073709551615),
  receive_asset_code text NOT NULL,
  receive_asset_scale smallint NOT NULL CHECK (receive_asset_scale BETWEEN 0 AND 255),
  -- The exchange rate used (receiver units per sender unit, major units), kept for the record.
  rate_numerator numeric NOT NULL CHECK (rate_numerator > 0),
  rate_denominator numeric NOT NULL CHECK (rate_denominator > 0),
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outgoing_payments (
  id uuid PRIMARY KEY,
  wallet_address_id uuid NOT NULL REFERENCES wallet_addresses (id),
  client text NOT NULL,
  grant_id uuid NOT NULL,
  -- A quote pays for one payment only.
  quote_id uuid NOT NULL UNIQUE REFERENCES quotes (id),
  receiver text NOT NULL,
  debit_amount numeric(20, 0) NOT NULL CHECK (debit_amount > 0 AND debit_amount <= 18446744073709551615),
  fee_amount numeric(20, 0) NOT NULL CHECK (fee_amount >= 0 AND fee_amount < debit_amount),
  receive_amount numeric(20, 0) NOT NULL CHECK (receive_amount > 0 AND receive_amount <= 18446744073709551615),
  receive_asset_code text NOT NULL,
  receive_asset_scale smallint NOT NULL,
  -- What left for the receiver (fees excluded); never more than debit less fee.
  sent_amount numeric(20, 0) NOT NULL DEFAULT 0 CHECK (sent_amount >= 0 AND sent_amount <= debit_amount - fee_amount),
  state text NOT NULL CHECK (state IN ('sending', 'completed', 'failed')),
  failure text,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  metadata jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((state = 'sending') = (next_attempt_at IS NOT NULL))
);

CREATE INDEX outgoing_payments_list ON outgoing_payments (wallet_address_id, created_at DESC, id DESC);
CREATE INDEX outgoing_payments_grant ON outgoing_payments (grant_id, created_at);
CREATE INDEX outgoing_payments_due ON outgoing_payments (next_attempt_at) WHERE state = 'sending';

-- One row per grant that has created payments: locked while a payment is created under the grant,
-- so that concurrent creates see each other's spending.
CREATE TABLE outgoing_payment_grants (
  grant_id uuid PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);
