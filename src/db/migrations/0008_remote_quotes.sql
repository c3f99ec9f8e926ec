-- Quotes for incoming payments at other ASEs carry the terms of their Interledger rate probe.
ALTER TABLE quotes ADD COLUMN ilp_terms jsonb;
ALTER TABLE quotes ADD CONSTRAINT quotes_local_or_remote
  CHECK ((receiver_incoming_payment_id IS NULL) <> (ilp_terms IS NULL));
