-- Operators can cancel payments through the admin API.

-- A cancelled incoming payment is closed (completed_at is set, so no credit can reach it by any
-- path) and remembers why; Open Payments clients see it as completed, the only closed state the
-- spec has.
ALTER TABLE incoming_payments ADD COLUMN cancelled_at timestamptz;
ALTER TABLE incoming_payments ADD COLUMN cancel_reason text CHECK (length(cancel_reason) <= 500);
ALTER TABLE incoming_payments ADD CONSTRAINT incoming_payments_cancelled_is_closed
  CHECK (cancelled_at IS NULL OR (completed_at IS NOT NULL AND cancel_reason IS NOT NULL));

-- An outgoing payment cancelled before it started sending: its reservation was released and
-- `failure` holds the operator's reason.
ALTER TABLE outgoing_payments DROP CONSTRAINT outgoing_payments_state_check;
ALTER TABLE outgoing_payments ADD CONSTRAINT outgoing_payments_state_check
  CHECK (state IN ('sending', 'completed', 'failed', 'cancelled'));

-- Admin lists filter by state within a wallet address, newest first.
CREATE INDEX outgoing_payments_state_list
  ON outgoing_payments (wallet_address_id, state, created_at DESC, id DESC);

-- Admin lists across every wallet address, newest first.
CREATE INDEX incoming_payments_recent ON incoming_payments (created_at DESC, id DESC);
CREATE INDEX outgoing_payments_recent ON outgoing_payments (created_at DESC, id DESC);
CREATE INDEX grants_recent ON grants (created_at DESC, id DESC);

-- A payment's ledger transfers, for the admin view of it: by reference (`outgoing_payment:<id>`)
-- or by a reference under its id (`outgoing:<id>:deliver`); text_pattern_ops serves the prefix.
CREATE INDEX ledger_transfers_reference ON ledger_transfers (reference text_pattern_ops);
