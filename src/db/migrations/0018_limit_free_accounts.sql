-- The asset's own accounts (settlement, the outgoing-payment clearing account, fees) are touched by
-- every local payment, deposit and cross-asset packet. As TigerBeetle's limit-free accounts, they
-- carry no balance rule, so no transfer needs to lock them: their movements are appended here and
-- folded into the cached totals later (src/ledger/limit-free.ts). Their totals are the row's plus
-- the deltas not yet folded, which is what ledger_account_totals shows.
UPDATE ledger_accounts SET rule = 'none' WHERE kind IN ('outgoing', 'fees');

CREATE TABLE ledger_account_deltas (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id uuid NOT NULL REFERENCES ledger_accounts (id),
  -- Pending deltas are negative when a reservation is resolved.
  debits_posted numeric(39, 0) NOT NULL,
  credits_posted numeric(39, 0) NOT NULL,
  debits_pending numeric(39, 0) NOT NULL,
  credits_pending numeric(39, 0) NOT NULL
);

CREATE INDEX ledger_account_deltas_account ON ledger_account_deltas (account_id);

CREATE VIEW ledger_account_totals AS
  SELECT a.id, a.asset_id, a.kind, a.rule, a.debit_limit, a.created_at,
         a.debits_posted + coalesce(d.debits_posted, 0) AS debits_posted,
         a.credits_posted + coalesce(d.credits_posted, 0) AS credits_posted,
         a.debits_pending + coalesce(d.debits_pending, 0) AS debits_pending,
         a.credits_pending + coalesce(d.credits_pending, 0) AS credits_pending
    FROM ledger_accounts a
    LEFT JOIN LATERAL (
      SELECT sum(x.debits_posted) AS debits_posted, sum(x.credits_posted) AS credits_posted,
             sum(x.debits_pending) AS debits_pending, sum(x.credits_pending) AS credits_pending
        FROM ledger_account_deltas x
       WHERE x.account_id = a.id
    ) d ON true;
