-- What each packet carried in the peer's asset, which is what the peer's account is credited with
-- when the packet is fulfilled; `amount` stays in the sender's asset. Packets recorded before this
-- migration went out in the sender's asset, as every payment then did.
ALTER TABLE outgoing_packets ADD COLUMN peer_amount numeric(20, 0);
UPDATE outgoing_packets SET peer_amount = amount;
ALTER TABLE outgoing_packets ALTER COLUMN peer_amount SET NOT NULL;
ALTER TABLE outgoing_packets ADD CONSTRAINT outgoing_packets_peer_amount CHECK (peer_amount >= 0);

-- How the STREAM payment ended, recorded before it is booked: a booking that fails and is retried
-- books what happened instead of sending again or calling a delivered payment failed.
ALTER TABLE outgoing_payments ADD COLUMN stream_outcome text
  CHECK (stream_outcome IN ('delivered', 'undelivered'));
