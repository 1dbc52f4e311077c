-- Target tables, as the Chef server defines them (DOMAIN.md).
CREATE TABLE containers (
  id              VARCHAR(36) PRIMARY KEY,   -- the couch _id, kept
  org_id          CHAR(32)    NOT NULL,      -- the org guid
  authz_id        CHAR(32)    NOT NULL UNIQUE,
  name            TEXT        NOT NULL,
  last_updated_by CHAR(32)    NOT NULL,      -- the doc's requester_id
  created_at      TIMESTAMP   NOT NULL,
  updated_at      TIMESTAMP   NOT NULL,
  UNIQUE (org_id, name)
);

CREATE TABLE "groups" (
  id              VARCHAR(36) PRIMARY KEY,
  org_id          CHAR(32)    NOT NULL,
  authz_id        CHAR(32)    NOT NULL UNIQUE,
  name            TEXT        NOT NULL,
  last_updated_by CHAR(32)    NOT NULL,
  created_at      TIMESTAMP   NOT NULL,
  updated_at      TIMESTAMP   NOT NULL,
  UNIQUE (org_id, name)
);

-- The state tracker: one row per org per migration type.
CREATE TYPE org_state AS ENUM ('holding', 'ready', 'started', 'completed', 'failed', 'purge_started', 'purge_successful');

CREATE TABLE org_migration_state (
  id              SERIAL PRIMARY KEY,
  org_name        TEXT        NOT NULL,
  org_id          VARCHAR(36) NOT NULL,
  migration_type  TEXT        NOT NULL,
  state           org_state   NOT NULL DEFAULT 'holding',
  fail_location   VARCHAR(50),
  migration_start TIMESTAMP,
  migration_end   TIMESTAMP,
  -- fleet bookkeeping beside the legacy columns:
  run_id          BIGINT,                    -- the run that last started this org
  current_step    VARCHAR(50),               -- the step a started org is in (resume / reconcile)
  fail_detail     TEXT,                      -- why it failed, for the operator
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (org_name, migration_type),
  UNIQUE (org_id, migration_type)
);
CREATE INDEX org_migration_state_ready ON org_migration_state (migration_type, state, org_id);
CREATE INDEX org_migration_state_run ON org_migration_state (run_id);

-- The account snapshot ("dets files"): a new one is written beside the old
-- and swapped in by moving the single current pointer.
CREATE TABLE account_snapshots (
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

CREATE TABLE account_snapshot_current (
  singleton   BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
  snapshot_id BIGINT NOT NULL REFERENCES account_snapshots (id)
);

CREATE TABLE account_orgs (
  snapshot_id BIGINT  NOT NULL,
  name        TEXT    NOT NULL,
  guid        TEXT    NOT NULL,  -- TEXT like org_migration_state.org_id, so joins on it use the index
  precreated  BOOLEAN NOT NULL,
  PRIMARY KEY (snapshot_id, name)
);

CREATE TABLE account_authz (
  snapshot_id BIGINT NOT NULL,
  couch_id    TEXT   NOT NULL,
  authz_id    TEXT   NOT NULL,
  PRIMARY KEY (snapshot_id, couch_id)
);

-- One row per POST /migrations/:type/start.
CREATE TABLE migration_runs (
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
  started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  finished_at    TIMESTAMPTZ
);
-- At most one active run per migration type, fleet-wide.
CREATE UNIQUE INDEX migration_runs_one_active ON migration_runs (migration_type) WHERE state <> 'ready';

-- Runtime settings every process reads (sleep time, drain wait).
CREATE TABLE settings (
  key        TEXT PRIMARY KEY,
  value      JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
