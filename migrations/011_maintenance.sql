-- Fleet-wide chores (the state mirror's resync, src/workers/reconciler.ts):
-- when each last ran, so one process in the fleet does each at its interval,
-- whichever process's reconciler gets there first.
CREATE TABLE mover.maintenance (
  task     TEXT PRIMARY KEY,
  last_run TIMESTAMPTZ NOT NULL
);
