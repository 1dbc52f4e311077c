-- A run minute by minute, for the runbook page's charts (so they survive a
-- reload, and show a run from its start): each minute's last sample of the
-- run's counters, the orgs in flight, the most orgs dark at once seen in the
-- minute, and the run's dark-time p99 so far. Written every few seconds by
-- one worker of the fleet (src/runs/series.ts).
CREATE TABLE mover.run_minutes (
  run_id      BIGINT      NOT NULL,
  minute      TIMESTAMPTZ NOT NULL,
  sampled_at  TIMESTAMPTZ NOT NULL,
  finished    INT         NOT NULL,
  failed      INT         NOT NULL,
  in_flight   INT         NOT NULL,
  dark_max    INT,
  dark_p99_ms INT,
  PRIMARY KEY (run_id, minute)
);
