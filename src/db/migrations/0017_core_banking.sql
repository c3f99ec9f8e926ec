-- Core-banking hooks: an ASE's own core banking approves outgoing payments, is told to post or
-- release them, and may decline incoming money. See docs/core-banking.md.

-- A hook per asset; it overrides the global one (CORE_BANKING_URL) for that asset's payments.
CREATE TABLE core_banking_hooks (
  asset_id uuid PRIMARY KEY REFERENCES assets (id),
  url text NOT NULL CHECK (url ~ '^https?://'),
  -- Standard Webhooks secret (`whsec_` + base64), kept so that callouts can be signed with it.
  secret text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Outgoing payments core banking approved: written in the payment's creation transaction, so that
-- its end (and only its end) is reported as a post or release callout.
CREATE TABLE core_banking_approvals (
  payment_id uuid PRIMARY KEY,
  asset_id uuid NOT NULL REFERENCES assets (id),
  approved_at timestamptz NOT NULL DEFAULT now()
);

-- The outbox of post and release callouts: a row commits with the payment's end (one per payment)
-- and a worker sends it, retrying until core banking accepts it.
CREATE TABLE core_banking_callouts (
  -- Sent as `webhook-id` and `Idempotency-Key`: the same on every attempt.
  id uuid PRIMARY KEY,
  payment_id uuid NOT NULL UNIQUE,
  asset_id uuid NOT NULL REFERENCES assets (id),
  kind text NOT NULL CHECK (kind IN ('post', 'release')),
  -- The request body's facts, fixed when the payment ended.
  data jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered')),
  attempts integer NOT NULL DEFAULT 0,
  -- When due; while an attempt is sending, the end of its lease.
  next_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX core_banking_callouts_due ON core_banking_callouts (next_attempt_at)
  WHERE status = 'pending';

-- The incoming decision, asked once per incoming payment and kept for its life.
ALTER TABLE incoming_payments
  ADD COLUMN core_banking_decision text CHECK (core_banking_decision IN ('approved', 'declined')),
  ADD COLUMN core_banking_reason text;
