-- GNAP authorization server: grants, their interaction, and access tokens.

CREATE TABLE grants (
  id uuid PRIMARY KEY,
  state text NOT NULL CHECK (state IN ('pending', 'approved', 'finalized')),
  -- Why a finalized grant ended: tokens issued, revoked by client or operator, or rejected by the RO.
  finalization text CHECK (finalization IN ('issued', 'revoked', 'rejected')),
  -- The client identity: its wallet address URL, or a directed-identity JWK (non-interactive only).
  client_wallet_address text,
  client_jwk jsonb,
  -- The access items as granted (validated, only known fields kept).
  access jsonb NOT NULL,
  -- The wallet address the access is for, when the items name one (for the operator's grant list).
  wallet_address_id uuid REFERENCES wallet_addresses (id),
  -- Continuation: the token is derived from AUTH_SECRET and this salt, never stored.
  continue_id uuid NOT NULL UNIQUE,
  continue_salt text NOT NULL,
  last_continued_at timestamptz,
  -- Interaction (interactive grants only).
  interact_id uuid UNIQUE,
  interact_nonce text,
  interact_expires_at timestamptz,
  finish_method text CHECK (finish_method IN ('redirect')),
  finish_uri text,
  client_nonce text,
  -- The browser session that started the interaction (sha-256 of the cookie value).
  interact_session_hash text,
  -- Who consented (wallet address id of the signed-in account holder).
  subject_wallet_address_id uuid REFERENCES wallet_addresses (id),
  -- sha-256 of the interact_ref handed to the client; cleared when used.
  interact_ref_hash text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((client_wallet_address IS NULL) <> (client_jwk IS NULL)),
  CHECK ((state = 'finalized') = (finalization IS NOT NULL))
);

CREATE INDEX grants_wallet_address ON grants (wallet_address_id, created_at);

CREATE TABLE access_tokens (
  id uuid PRIMARY KEY,
  grant_id uuid NOT NULL REFERENCES grants (id),
  -- sha-256 of the token value, base64url; the value itself is never stored.
  value_hash text NOT NULL UNIQUE,
  manage_id uuid NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
