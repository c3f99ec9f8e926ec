CREATE TABLE incoming_payments (
  id uuid PRIMARY KEY,
  wallet_address_id uuid NOT NULL REFERENCES wallet_addresses (id),
  -- The client that created it (wallet address URL, or jwk:<x> for a directed identity), for
  -- `read`/`list` access, which sees only a client's own resources.
  client text NOT NULL,
  incoming_amount numeric(20, 0) CHECK (incoming_amount > 0 AND incoming_amount <= 18446744073709551615),
  -- Never beyond incoming_amount: every credit is a conditional update checked here too.
  received_amount numeric(20, 0) NOT NULL DEFAULT 0
    CHECK (received_amount >= 0 AND (incoming_amount IS NULL OR received_amount <= incoming_amount)),
  completed_at timestamptz,
  expires_at timestamptz NOT NULL,
  metadata jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX incoming_payments_list ON incoming_payments (wallet_address_id, created_at DESC, id DESC);
