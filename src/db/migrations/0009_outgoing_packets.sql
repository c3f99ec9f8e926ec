-- Packets our sender has counted as sent, kept until the payment ends. After a crash the
-- in-flight ones are sent again as they were: a peer that booked one answers its Fulfill again
-- (receivers book a packet once), any other answer means it never arrived.
CREATE TABLE outgoing_packets (
  id text PRIMARY KEY,
  payment_id uuid NOT NULL REFERENCES outgoing_payments (id),
  peer_id uuid NOT NULL,
  prepare bytea NOT NULL,
  amount numeric(20, 0) NOT NULL CHECK (amount > 0),
  fulfilled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outgoing_packets_in_flight ON outgoing_packets (payment_id) WHERE NOT fulfilled;
