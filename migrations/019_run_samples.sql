-- A run sample by sample (every few seconds), for the runbook page's charts:
-- a 20-second run and a 20-hour one both drawn at a resolution that suits
-- their length (src/db/run-series.ts picks the bucket on read). Replaces the
-- per-minute table of 016, whose rows are carried over as samples.
CREATE TABLE mover.run_samples (
  run_id      BIGINT      NOT NULL,
  at          TIMESTAMPTZ NOT NULL,
  finished    INT         NOT NULL,
  failed      INT         NOT NULL,
  in_flight   INT         NOT NULL,
  dark        INT,           -- orgs of the run dark at the sample; null if the darklaunch Redis did not answer
  dark_p99_ms INT,           -- the run's dark-time p99 so far
  PRIMARY KEY (run_id, at)
);
INSERT INTO mover.run_samples (run_id, at, finished, failed, in_flight, dark, dark_p99_ms)
SELECT run_id, sampled_at, finished, failed, in_flight, dark_max, dark_p99_ms FROM mover.run_minutes
ON CONFLICT DO NOTHING;
DROP TABLE mover.run_minutes;
