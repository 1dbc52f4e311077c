-- The batches of a batched run (the prep pass) that have been counted: a
-- batch delivered twice (its worker stalled, Redis lost that it finished)
-- must count its orgs in the run once.
CREATE TABLE mover.run_batches (
  run_id BIGINT NOT NULL,
  batch  INT    NOT NULL,
  at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, batch)
);
