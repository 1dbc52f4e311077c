-- Flat operator reads at a million orgs (docs/architecture.md, "Reads at
-- scale"). Chef's org_migration_state has no index on state, and mover does
-- not alter Chef's tables, so mover keeps each org's state beside it in
-- mover.org_progress.state, written by the same statements that change the
-- state (src/db/state-tracker.ts), and the counts by state in striped
-- counters kept by a trigger on mover's own table. A change made to Chef's
-- table by hand is caught up by the reconciler's resync (resyncStateMirror).
ALTER TABLE mover.org_progress ADD COLUMN state TEXT;

INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, state)
  SELECT migration_type, org_id, org_name, state::text FROM org_migration_state
  ON CONFLICT (migration_type, org_id) DO UPDATE SET state = EXCLUDED.state;

-- The org list filtered by state, in name order.
CREATE INDEX org_progress_by_state ON mover.org_progress (migration_type, state, org_name);

-- 16 stripes per (type, state): concurrent claims of different orgs update
-- different rows, so no one counter row serialises the fleet.
CREATE TABLE mover.org_state_counts (
  migration_type TEXT   NOT NULL,
  state          TEXT   NOT NULL,
  stripe         INT    NOT NULL,
  n              BIGINT NOT NULL,
  PRIMARY KEY (migration_type, state, stripe)
);

INSERT INTO mover.org_state_counts (migration_type, state, stripe, n)
  SELECT migration_type, state, hashtext(org_id) & 15, count(*) FROM mover.org_progress WHERE state IS NOT NULL GROUP BY 1, 2, 3;

-- The counters are kept by mover.count_org_states (src/db/functions.sql).
CREATE TRIGGER org_progress_counts_insert AFTER INSERT ON mover.org_progress
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mover.count_org_states();
CREATE TRIGGER org_progress_counts_update AFTER UPDATE ON mover.org_progress
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mover.count_org_states();
CREATE TRIGGER org_progress_counts_delete AFTER DELETE ON mover.org_progress
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mover.count_org_states();
