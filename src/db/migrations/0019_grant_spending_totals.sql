-- What each grant has spent, kept on the row a payment create locks anyway, so that the create
-- reads it under that lock instead of summing every payment of the grant (which grew with the
-- grant's age): the debit amounts, and per receive asset ("CODE:scale") the receive amounts, of
-- every payment created under the grant since `totals_since` (the start of its limits' current
-- interval; NULL: since its first payment, for a grant without an interval), whatever became of
-- them. Payments that failed or were cancelled are subtracted when the totals are read, from their
-- own rows (the partial index below), so that failing a payment never takes the grant's lock.
-- `totals_valid` is false until a create has summed the grant's payments once (a grant that paid
-- before this migration, or a new interval).
ALTER TABLE outgoing_payment_grants
  ADD COLUMN totals_valid boolean NOT NULL DEFAULT false,
  ADD COLUMN totals_since timestamptz,
  ADD COLUMN debit_total numeric(39, 0) NOT NULL DEFAULT 0,
  ADD COLUMN receive_totals jsonb NOT NULL DEFAULT '{}';

CREATE INDEX outgoing_payments_grant_given_back
  ON outgoing_payments (grant_id, created_at) WHERE state IN ('failed', 'cancelled');
