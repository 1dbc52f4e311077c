-- What a run has counted, by item (an org's skip, a prep batch): a job
-- delivered twice, or a counting statement sent again after its answer was
-- lost, must count in the run once.
CREATE TABLE mover.run_counted (
  run_id BIGINT NOT NULL,
  item   TEXT   NOT NULL,
  at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, item)
);
