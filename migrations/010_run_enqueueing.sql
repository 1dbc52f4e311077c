-- A run's jobs are queued page by page (a million orgs never sit in one
-- process's memory): while its starter is still queueing, the run cannot end
-- however many of its queued orgs are finished. enqueue_beat moves with every
-- page, so the reconciler can tell a starter that died mid-way (then the run
-- goes on with what was queued).
ALTER TABLE mover.migration_runs
  ADD COLUMN enqueueing   BOOLEAN     NOT NULL DEFAULT false,
  ADD COLUMN enqueue_beat TIMESTAMPTZ;
