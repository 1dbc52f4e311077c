-- Circuit breakers (docs/architecture.md, "Riding through store faults").
-- A run's breaker opens when an infrastructure fault outlasted the grace (the
-- run pauses: no org starts, the queue is paused) and closes by itself once
-- every store answers again; or when too many of its last finished orgs failed
-- on their data (the run halts: an operator looks). Each org's failures are
-- kept, whatever became of the org afterwards.
ALTER TABLE mover.migration_runs
  ADD COLUMN breaker           TEXT        NOT NULL DEFAULT 'closed' CHECK (breaker IN ('closed', 'open', 'half_open')),
  ADD COLUMN breaker_kind      TEXT        CHECK (breaker_kind IN ('infrastructure', 'data')),
  ADD COLUMN breaker_reason    TEXT,
  ADD COLUMN breaker_since     TIMESTAMPTZ,  -- when it last opened, or went half-open
  ADD COLUMN breaker_trips     INT         NOT NULL DEFAULT 0;

ALTER TABLE mover.org_progress
  -- Why the org last failed: 'data' (its own documents) or 'infrastructure' (a store), which decides whether a closing breaker retries it.
  ADD COLUMN fail_kind TEXT CHECK (fail_kind IN ('data', 'infrastructure')),
  -- Times the org was put back to ready and queued again in its run (a lost job, a breaker that closed): bounded.
  ADD COLUMN requeues  INT  NOT NULL DEFAULT 0;

CREATE TABLE mover.org_failures (
  id             BIGSERIAL PRIMARY KEY,
  migration_type TEXT        NOT NULL,
  org_id         VARCHAR(36) NOT NULL,
  org_name       TEXT        NOT NULL,
  run_id         BIGINT,
  step           VARCHAR(50) NOT NULL,
  kind           TEXT        NOT NULL CHECK (kind IN ('data', 'infrastructure')),
  detail         TEXT,
  at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX org_failures_org ON mover.org_failures (org_name, at DESC);
-- The failure breaker looks at a run's last finished orgs.
CREATE INDEX org_progress_run_finished ON mover.org_progress (run_id, updated_at DESC) WHERE NOT in_flight;
