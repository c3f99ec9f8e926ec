-- What each packet of our STREAM sender was expected to deliver and, once fulfilled,
-- what the receiver said arrived, in the receiver's asset. With what the receiving incoming payment
-- had received when the attempt began, they tell after a crash which in-flight packets arrived at a
-- receiver that does not answer repeats (docs/interledger.md).
ALTER TABLE outgoing_packets ADD COLUMN expected_delivery numeric(20, 0) CHECK (expected_delivery >= 0);
ALTER TABLE outgoing_packets ADD COLUMN delivered numeric(20, 0) CHECK (delivered >= 0);
ALTER TABLE outgoing_payments ADD COLUMN receiver_received_before numeric(20, 0)
  CHECK (receiver_received_before >= 0);
