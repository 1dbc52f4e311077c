-- How long each org was dark (503): from the write that set 503_mode to the
-- write that cleared it, as the delivery that moved it measured it (null when
-- it was never dark, or when no delivery saw both ends). Each run keeps a
-- histogram of its orgs' dark times in 100 ms buckets (the last bucket is 60 s
-- and more) and the longest, updated by the statement that finishes the org,
-- so its p50, p99 and max are read from the run row at any size.
ALTER TABLE mover.org_progress ADD COLUMN dark_ms INTEGER;
ALTER TABLE mover.migration_runs
  ADD COLUMN dark_hist INTEGER[] NOT NULL DEFAULT array_fill(0, ARRAY[601]),
  ADD COLUMN dark_max_ms INTEGER;

-- Added to by mover.dark_hist_add (src/db/functions.sql).
