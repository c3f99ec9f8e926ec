CREATE TABLE wallet_addresses (
  id uuid PRIMARY KEY,
  -- URL path under OPEN_PAYMENTS_URL, e.g. '/alice'; '' is the path-less address (/.well-known/pay).
  path text NOT NULL UNIQUE CHECK (path = '' OR path ~ '^(/[A-Za-z0-9][A-Za-z0-9._~-]*)+$'),
  asset_id uuid NOT NULL REFERENCES assets (id),
  public_name text CHECK (length(public_name) BETWEEN 1 AND 200),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  ledger_account_id uuid NOT NULL UNIQUE REFERENCES ledger_accounts (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX wallet_addresses_created ON wallet_addresses (created_at, id);

CREATE TABLE wallet_address_keys (
  id uuid PRIMARY KEY,
  wallet_address_id uuid NOT NULL REFERENCES wallet_addresses (id),
  -- A kid is never reused on one wallet address, even after revocation, so that a cached JWKS
  -- can never make a revoked key look current.
  kid text NOT NULL CHECK (length(kid) BETWEEN 1 AND 200),
  -- Ed25519 public key, base64url without padding (the JWK "x").
  x text NOT NULL CHECK (x ~ '^[A-Za-z0-9_-]{43}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  UNIQUE (wallet_address_id, kid)
);
