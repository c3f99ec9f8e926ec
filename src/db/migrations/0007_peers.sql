-- Interledger peers: other ASEs we exchange ILP packets with over ILP-over-HTTP.

-- How far an account may be debited beyond its credits: a peer's credit line. NULL: no limit.
ALTER TABLE ledger_accounts ADD COLUMN debit_limit numeric(39, 0) CHECK (debit_limit >= 0);
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_debit_limit
  CHECK (debit_limit IS NULL OR debits_posted + debits_pending - credits_posted <= debit_limit);

CREATE TABLE peers (
  id uuid PRIMARY KEY,
  name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
  asset_id uuid NOT NULL REFERENCES assets (id),
  -- The peer's own ILP address, e.g. test.ase-b.
  ilp_address text NOT NULL,
  -- Where to POST packets for this peer, and the bearer token it expects from us.
  http_endpoint text NOT NULL,
  outgoing_token text NOT NULL CHECK (length(outgoing_token) BETWEEN 16 AND 500),
  max_packet_amount numeric(20, 0) CHECK (max_packet_amount > 0 AND max_packet_amount <= 18446744073709551615),
  -- Debited when the peer sends us money, credited when we send it money (settled out of band).
  ledger_account_id uuid NOT NULL UNIQUE REFERENCES ledger_accounts (id),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Bearer tokens the peer may present to us (sha-256, base64url).
CREATE TABLE peer_incoming_tokens (
  token_hash text PRIMARY KEY,
  peer_id uuid NOT NULL REFERENCES peers (id) ON DELETE CASCADE
);

-- ILP address prefixes routed to a peer; the longest matching prefix wins.
CREATE TABLE peer_routes (
  prefix text PRIMARY KEY,
  peer_id uuid NOT NULL REFERENCES peers (id) ON DELETE CASCADE
);
