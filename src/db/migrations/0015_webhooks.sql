-- Webhooks: a transactional outbox. Events are written in the transaction of the state change that
-- causes them, with one delivery per subscribed endpoint; a worker sends deliveries afterwards.

CREATE TABLE webhook_endpoints (
  id uuid PRIMARY KEY,
  url text NOT NULL CHECK (url ~ '^https?://'),
  description text,
  event_types text[] NOT NULL CHECK (cardinality(event_types) > 0),
  -- Standard Webhooks secret (`whsec_` + base64), kept so that the worker can sign with it.
  secret text NOT NULL,
  -- The secret before the last rotation signs too until this time, so receivers can switch over.
  previous_secret text,
  previous_secret_expires_at timestamptz,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Deleted endpoints keep their delivery history; nothing more is sent to them.
  deleted_at timestamptz
);
CREATE INDEX webhook_endpoints_list ON webhook_endpoints (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE webhook_events (
  id uuid PRIMARY KEY,
  -- Commit order of events that touch one resource (their transactions lock its row first).
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  type text NOT NULL,
  -- The resource whose events are delivered in order, e.g. `outgoing_payment:<id>`.
  resource text NOT NULL,
  -- The facts of the event; the payload is rendered from them when sent.
  data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_events_resource ON webhook_events (resource, seq);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY,
  event_id uuid NOT NULL REFERENCES webhook_events (id),
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id),
  -- Copied from the event, for the ordering check.
  event_type text NOT NULL,
  resource text NOT NULL,
  event_seq bigint NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  -- Every attempt ever (also the fencing token of a claim); failures since the last (re)start.
  attempts integer NOT NULL DEFAULT 0,
  failures integer NOT NULL DEFAULT 0,
  -- When due; while an attempt is sending, the end of its lease.
  next_attempt_at timestamptz,
  -- Retries stop (dead letter) once the retry period has passed since this time.
  retry_from timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_id, endpoint_id),
  CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, resource, event_seq)
  WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, status, created_at DESC);

CREATE TABLE webhook_attempts (
  id uuid PRIMARY KEY,
  delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id),
  attempt integer NOT NULL,
  started_at timestamptz NOT NULL,
  duration_ms integer NOT NULL,
  -- The receiver's status code, when it answered.
  status_code integer,
  error text,
  -- The start of the receiver's answer (at most 1 KiB), for the operator.
  response_excerpt text,
  delivered boolean NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);

-- Low-balance thresholds: per wallet address (before its asset's), per asset, per peer (its
-- remaining credit line). Exactly one target per row.
CREATE TABLE low_balance_thresholds (
  id uuid PRIMARY KEY,
  wallet_address_id uuid UNIQUE REFERENCES wallet_addresses (id),
  asset_id uuid UNIQUE REFERENCES assets (id),
  peer_id uuid UNIQUE REFERENCES peers (id) ON DELETE CASCADE,
  threshold numeric(20, 0) NOT NULL CHECK (threshold >= 0 AND threshold <= 18446744073709551615),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (num_nonnulls(wallet_address_id, asset_id, peer_id) = 1)
);

-- Set when an incoming payment's expiry has been recorded as an event (once).
ALTER TABLE incoming_payments ADD COLUMN expiry_recorded_at timestamptz;
-- Payments that expired before webhooks existed are not announced now.
UPDATE incoming_payments SET expiry_recorded_at = expires_at
 WHERE completed_at IS NULL AND expires_at <= now();
CREATE INDEX incoming_payments_expiring ON incoming_payments (expires_at)
  WHERE completed_at IS NULL AND expiry_recorded_at IS NULL;
