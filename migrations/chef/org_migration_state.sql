-- Chef Server's migration state tracker, as its three schema scripts leave it
-- (org_migration_state, add_migration_type,
-- create_composite_key_org_migration_state): id is a serial but not the key;
-- the key is (org_id, migration_type). Created only when absent; mover's own
-- bookkeeping per org lives in mover.org_progress, never in this table.
CREATE TABLE org_migration_state (
  id              SERIAL,
  org_name        TEXT NOT NULL,
  org_id          VARCHAR(36) NOT NULL,
  state           org_state NOT NULL DEFAULT 'holding',
  fail_location   VARCHAR(50),
  migration_start TIMESTAMP,
  migration_end   TIMESTAMP,
  migration_type  TEXT NOT NULL DEFAULT 'phase_1_migration',
  PRIMARY KEY (org_id, migration_type)
);
CREATE INDEX org_migration_state_name_idx ON org_migration_state (org_name);
