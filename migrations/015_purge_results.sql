-- What each org of a purge run (phase 4, src/jobs/phase_2_purge.ts) came to:
-- purged (with the documents removed), would be purged (a dry run), or left
-- unverified and why. The run's status and phase 4's step read their totals
-- and the unverified orgs from here.
CREATE TABLE mover.purge_results (
  run_id   BIGINT      NOT NULL,
  org_name TEXT        NOT NULL,
  outcome  TEXT        NOT NULL CHECK (outcome IN ('purged', 'would_purge', 'unverified')),
  docs     INT         NOT NULL DEFAULT 0,
  detail   TEXT,
  at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, org_name)
);
