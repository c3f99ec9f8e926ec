-- Assets and the double-entry ledger (TigerBeetle's model: accounts with cached posted/pending
-- totals guarded by CHECKs, immutable transfers identified by the caller's id).

CREATE TABLE assets (
  id uuid PRIMARY KEY,
  code text NOT NULL CHECK (code ~ '^[A-Za-z0-9]{1,16}$'),
  scale smallint NOT NULL CHECK (scale BETWEEN 0 AND 255),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (code, scale)
);

CREATE TABLE ledger_accounts (
  id uuid PRIMARY KEY,
  asset_id uuid NOT NULL REFERENCES assets (id),
  kind text NOT NULL CHECK (kind IN ('settlement', 'wallet', 'incoming', 'outgoing', 'peer', 'fees')),
  -- debits_within_credits: a liability such as a customer wallet, which may not go below zero.
  -- credits_within_debits: an asset-side account that may not go negative the other way.
  rule text NOT NULL CHECK (rule IN ('none', 'debits_within_credits', 'credits_within_debits')),
  debits_posted numeric(39, 0) NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
  credits_posted numeric(39, 0) NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
  debits_pending numeric(39, 0) NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
  credits_pending numeric(39, 0) NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (id, asset_id),
  CONSTRAINT ledger_accounts_debits_within_credits
    CHECK (rule <> 'debits_within_credits' OR debits_posted + debits_pending <= credits_posted),
  CONSTRAINT ledger_accounts_credits_within_debits
    CHECK (rule <> 'credits_within_debits' OR credits_posted + credits_pending <= debits_posted)
);

-- Each asset has exactly one settlement account (the ASE's side of deposits and withdrawals).
CREATE UNIQUE INDEX ledger_accounts_settlement_per_asset ON ledger_accounts (asset_id)
  WHERE kind = 'settlement';

CREATE TABLE ledger_transfers (
  id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  debit_account_id uuid NOT NULL,
  credit_account_id uuid NOT NULL,
  asset_id uuid NOT NULL,
  amount numeric(20, 0) NOT NULL CHECK (amount > 0 AND amount <= 18446744073709551615),
  two_phase boolean NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
  posted_amount numeric(20, 0) CHECK (posted_amount > 0 AND posted_amount <= amount),
  expires_at timestamptz,
  resolved_at timestamptz,
  reference text CHECK (length(reference) <= 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (debit_account_id, asset_id) REFERENCES ledger_accounts (id, asset_id),
  FOREIGN KEY (credit_account_id, asset_id) REFERENCES ledger_accounts (id, asset_id),
  CHECK (debit_account_id <> credit_account_id),
  CHECK ((state = 'posted') = (posted_amount IS NOT NULL)),
  CHECK (two_phase OR (state = 'posted' AND posted_amount = amount AND expires_at IS NULL)),
  CHECK ((state = 'pending') = (two_phase AND resolved_at IS NULL))
);

CREATE INDEX ledger_transfers_debit_account ON ledger_transfers (debit_account_id, seq);
CREATE INDEX ledger_transfers_credit_account ON ledger_transfers (credit_account_id, seq);
CREATE INDEX ledger_transfers_open_pending ON ledger_transfers (expires_at) WHERE state = 'pending';

-- Transfers are facts: the only change ever allowed is resolving a pending transfer once.
CREATE FUNCTION ledger_transfers_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'ledger transfers are append-only' USING ERRCODE = 'restrict_violation';
  END IF;
  IF OLD.state <> 'pending'
     OR NEW.id <> OLD.id OR NEW.seq <> OLD.seq
     OR NEW.debit_account_id <> OLD.debit_account_id OR NEW.credit_account_id <> OLD.credit_account_id
     OR NEW.asset_id <> OLD.asset_id OR NEW.amount <> OLD.amount OR NEW.two_phase <> OLD.two_phase
     OR NEW.expires_at IS DISTINCT FROM OLD.expires_at OR NEW.reference IS DISTINCT FROM OLD.reference
     OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'ledger transfer % can no longer change', OLD.id USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER ledger_transfers_guard BEFORE UPDATE OR DELETE ON ledger_transfers
  FOR EACH ROW EXECUTE FUNCTION ledger_transfers_guard();
