-- The estate survey (src/jobs/estate_survey.ts, docs/domain.md "The estate
-- survey"): a read-only pass over every org of the account snapshot. Its
-- results are the only thing it writes, here, in mover's own schema; CouchDB,
-- Chef's tables and the darklaunch Redis are only read.

-- One row per org of a survey run: what it found, re-written whole when a
-- batch is delivered again (one set of results per org and run).
CREATE TABLE mover.survey_orgs (
  run_id          BIGINT      NOT NULL,
  org_name        TEXT        NOT NULL,
  org_id          TEXT        NOT NULL,
  batch           INT         NOT NULL,
  -- The org's state in phase_2_migration (org_migration_state), or null when not captured.
  migration_state TEXT,
  -- Null where the org database could not be read (missing_database, unreadable_database).
  containers      INT,
  "groups"        INT,
  documents       INT,
  bytes           BIGINT,
  copy_ms         INT,
  -- What Chef does with the org's containers and groups now: couchdb, sql, split, or null (a key Chef cannot read).
  served_from     TEXT,
  sql_rows        INT         NOT NULL,
  foreign_rows    INT         NOT NULL,
  -- Why the migration's preflight would refuse the org, or null.
  refusal         TEXT,
  findings        TEXT[]      NOT NULL DEFAULT '{}',
  -- Skipped documents by rule, the darklaunch problems, a read error: the evidence behind the findings.
  detail          JSONB       NOT NULL DEFAULT '{}',
  surveyed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, org_name)
);
-- GET /survey's largest orgs, read from the top of this index.
CREATE INDEX survey_orgs_largest ON mover.survey_orgs (run_id, bytes DESC NULLS LAST, org_name);

-- One row per finding of an org: GET /survey/orgs?finding= pages through it by org name.
CREATE TABLE mover.survey_findings (
  run_id   BIGINT NOT NULL,
  finding  TEXT   NOT NULL,
  org_name TEXT   NOT NULL,
  PRIMARY KEY (run_id, finding, org_name)
);

-- Each batch's totals (orgs by finding, documents skipped by rule, sizes,
-- copy times), replaced when the batch is delivered again: GET /survey sums
-- these, one row per batch, never the orgs' rows.
CREATE TABLE mover.survey_batches (
  run_id BIGINT NOT NULL,
  batch  INT    NOT NULL,
  orgs   INT    NOT NULL,
  totals JSONB  NOT NULL,
  PRIMARY KEY (run_id, batch)
);
