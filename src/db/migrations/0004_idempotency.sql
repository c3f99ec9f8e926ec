-- Idempotency-Key (IETF httpapi draft): the first response to a POST, per client and key, replayed
-- to retries of the same request.

CREATE TABLE idempotency_keys (
  -- Who the key belongs to (e.g. the token's client): keys never cross scopes.
  scope text NOT NULL,
  key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  -- sha-256 of method, path and query, and body: the same key for another request is refused.
  fingerprint text NOT NULL,
  state text NOT NULL CHECK (state IN ('in_progress', 'done')),
  status integer CHECK (status BETWEEN 100 AND 499),
  content_type text,
  body text,
  -- Until then a retry is told the request is in progress; afterwards it may take the key over
  -- (the first request crashed). A claim's value also identifies it: a takeover sets a later one.
  locked_until timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key),
  CHECK ((state = 'done') = (status IS NOT NULL))
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
