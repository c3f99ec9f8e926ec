-- Sessions of the operator console (signed in with the admin API key). The cookie carries a random
-- token; only its hash is stored, so a copy of this table signs nobody in.
CREATE TABLE console_sessions (
  token_hash text PRIMARY KEY,
  -- An HMAC of the admin API key the session was opened with: changing the key ends every session.
  key_fingerprint text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  CHECK (expires_at > created_at)
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
