-- No statement reads webhook events by resource any more: each endpoint's deliveries are ordered
-- per resource by webhook_deliveries_order. The index only cost an insert for every event written
-- (every create of an incoming payment, every payment's change of state).
DROP INDEX IF EXISTS webhook_events_resource;
