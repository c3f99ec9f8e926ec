-- Set while an attempt is sending a payment over Interledger, cleared when it ends: a payment
-- claimed again with this still set was interrupted (the process died), not retried.
ALTER TABLE outgoing_payments ADD COLUMN sending_since timestamptz;
