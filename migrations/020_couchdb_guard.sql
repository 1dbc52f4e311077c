-- The live-service guard (src/runs/couchdb-guard.ts): where a run's starts are
-- held below the concurrency the operator set because CouchDB's request time
-- broke its budget. effective_concurrency is null while the guard holds
-- nothing back; the claim's concurrency gate takes the lower of the two
-- (src/db/functions.sql, mover.claim_org).
ALTER TABLE mover.migration_runs
  ADD COLUMN effective_concurrency INT,
  ADD COLUMN guard_p99_ms          REAL,   -- the last figure the guard measured
  ADD COLUMN guard_source          TEXT,   -- couchdb_stats, couchdb_1x_stats or mover_requests
  ADD COLUMN guard_reason          TEXT,   -- why the effective concurrency is what it is (or why no figure)
  ADD COLUMN guard_at              TIMESTAMPTZ;
