-- The org lease (docs/architecture.md, "Who acts on an org"): the delivery,
-- revert or reconciler pass working on an org holds it, by a token, until a
-- time its process keeps moving forward. It replaces a session advisory lock
-- that held a Postgres connection for each org in flight (through the drain
-- wait), which capped the fleet's concurrency at the server's connections.
ALTER TABLE mover.org_progress
  ADD COLUMN lease_owner TEXT,
  ADD COLUMN lease_until TIMESTAMPTZ;

-- Each process renews all its leases in one statement, by token.
CREATE INDEX org_progress_leases ON mover.org_progress (lease_owner) WHERE lease_owner IS NOT NULL;
