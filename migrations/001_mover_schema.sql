-- mover's own bookkeeping, all in schema "mover": nothing here is added to
-- Chef's tables (docs/ and README: "What mover creates").
CREATE SCHEMA IF NOT EXISTS mover;

-- Per org and migration type, beside Chef's org_migration_state row (same key):
-- what the fleet needs that Chef's table has no column for.
CREATE TABLE mover.org_progress (
  migration_type TEXT        NOT NULL,
  org_id         VARCHAR(36) NOT NULL,
  org_name       TEXT        NOT NULL,
  run_id         BIGINT,                 -- the run that last started this org
  current_step   VARCHAR(50),            -- the step a started org is in (resume / reconcile), or revert:<run>
  fail_detail    TEXT,                   -- why it failed, for the operator
  -- true from the claim until the org is completed or failed (restored): the
  -- orgs that may be dark. The claim counts these against the run's concurrency.
  in_flight      BOOLEAN     NOT NULL DEFAULT false,
  -- mover wrote this org's containers/groups rows and has not removed them; a
  -- restore, reset or revert deletes rows only when this is set.
  rows_in_sql    BOOLEAN     NOT NULL DEFAULT false,
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (migration_type, org_id)
);
CREATE INDEX org_progress_run ON mover.org_progress (run_id);
CREATE INDEX org_progress_in_flight ON mover.org_progress (migration_type) WHERE in_flight;
-- Completed orgs a revert is working on (current_step revert:<run>), for the reconciler.
CREATE INDEX org_progress_reverting ON mover.org_progress (migration_type) WHERE current_step LIKE 'revert:%';

-- The account snapshot ("dets files"): a new one is written beside the old
-- and swapped in by moving the single current pointer.
CREATE TABLE mover.account_snapshots (
  id           BIGSERIAL PRIMARY KEY,
  state        TEXT        NOT NULL CHECK (state IN ('refreshing', 'ready', 'failed')),
  started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  finished_at  TIMESTAMPTZ,
  orgs         INT         NOT NULL DEFAULT 0,
  precreated   INT         NOT NULL DEFAULT 0,
  authz_joins  INT         NOT NULL DEFAULT 0,
  skipped_docs INT         NOT NULL DEFAULT 0,
  error        TEXT
);

CREATE TABLE mover.account_snapshot_current (
  singleton   BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
  snapshot_id BIGINT NOT NULL REFERENCES mover.account_snapshots (id)
);

CREATE TABLE mover.account_orgs (
  snapshot_id BIGINT  NOT NULL,
  name        TEXT    NOT NULL,
  guid        TEXT    NOT NULL,  -- TEXT like org_migration_state.org_id, so joins on it use the index
  precreated  BOOLEAN NOT NULL,
  PRIMARY KEY (snapshot_id, name)
);

CREATE TABLE mover.account_authz (
  snapshot_id BIGINT NOT NULL,
  couch_id    TEXT   NOT NULL,
  authz_id    TEXT   NOT NULL,
  PRIMARY KEY (snapshot_id, couch_id)
);

-- One row per POST /migrations/:type/start.
CREATE TABLE mover.migration_runs (
  id             BIGSERIAL PRIMARY KEY,
  migration_type TEXT        NOT NULL,
  state          TEXT        NOT NULL CHECK (state IN ('working', 'halting', 'ready')),
  requested      INT,                      -- NULL = "all"
  enqueued       INT         NOT NULL DEFAULT 0,
  concurrency    INT         NOT NULL,
  orgs_finished  INT         NOT NULL DEFAULT 0,  -- completed + failed, counted by the transition itself
  orgs_failed    INT         NOT NULL DEFAULT 0,
  orgs_skipped   INT         NOT NULL DEFAULT 0,  -- jobs whose org was no longer ready, or came after a halt
  fatal_stop     BOOLEAN     NOT NULL DEFAULT false,
  stop_reason    TEXT,
  params         JSONB       NOT NULL DEFAULT '{}',
  started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  finished_at    TIMESTAMPTZ
);
-- At most one active run per migration type, fleet-wide.
CREATE UNIQUE INDEX migration_runs_one_active ON mover.migration_runs (migration_type) WHERE state <> 'ready';

-- What each org of a revert run came to: reverted, or refused with the
-- differences between its SQL rows and its CouchDB documents.
CREATE TABLE mover.revert_results (
  run_id      BIGINT      NOT NULL,
  org_name    TEXT        NOT NULL,
  outcome     TEXT        NOT NULL CHECK (outcome IN ('reverted', 'refused', 'failed')),
  written_back INT        NOT NULL DEFAULT 0,
  differences JSONB       NOT NULL DEFAULT '[]',
  detail      TEXT,
  at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, org_name)
);
CREATE INDEX revert_results_org ON mover.revert_results (org_name, at DESC);

-- Runtime settings every process reads (sleep time, drain wait).
CREATE TABLE mover.settings (
  key        TEXT PRIMARY KEY,
  value      JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The runbook's four phases and their steps: the phase state lives here, so
-- any api or worker process restarted mid-phase finds it as it stood.
CREATE TABLE mover.phases (
  n           INT PRIMARY KEY CHECK (n BETWEEN 1 AND 4),
  state       TEXT NOT NULL DEFAULT 'not_started'
              CHECK (state IN ('not_started', 'running', 'waiting', 'completed', 'failed', 'halted')),
  params      JSONB NOT NULL DEFAULT '{}',
  started_by  TEXT,
  started_at  TIMESTAMPTZ,
  finished_at TIMESTAMPTZ
);
INSERT INTO mover.phases (n) VALUES (1), (2), (3), (4);

CREATE TABLE mover.phase_steps (
  phase        INT  NOT NULL REFERENCES mover.phases (n),
  id           TEXT NOT NULL,          -- the runbook's numbering, e.g. '2.5'
  position     INT  NOT NULL,
  title        TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('auto', 'manual')),
  state        TEXT NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'running', 'waiting_confirmation', 'done', 'failed', 'skipped')),
  started_at   TIMESTAMPTZ,
  finished_at  TIMESTAMPTZ,
  detail       JSONB NOT NULL DEFAULT '{}',
  confirmed_by TEXT,
  confirmed_at TIMESTAMPTZ,
  PRIMARY KEY (phase, id)
);

-- Every state change an operator causes.
CREATE TABLE mover.audit_log (
  id     BIGSERIAL PRIMARY KEY,
  at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  actor  TEXT NOT NULL,
  action TEXT NOT NULL,
  detail JSONB NOT NULL DEFAULT '{}'
);
