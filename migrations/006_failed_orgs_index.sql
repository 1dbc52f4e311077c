-- A run's failed orgs (the runbook page's failures by step) without reading
-- the whole run: only rows that carry a failure kind are in this index.
CREATE INDEX org_progress_run_failed ON mover.org_progress (run_id) WHERE fail_kind IS NOT NULL;
