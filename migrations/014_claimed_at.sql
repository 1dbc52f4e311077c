-- When the org's current claim took it (ready → started for a migration,
-- completed → started for a revert): the moment a delivery that resumes an
-- org goes by for its dark time. Chef's migration_start says when the org
-- migrated, and a revert leaves it as it was.
ALTER TABLE mover.org_progress ADD COLUMN claimed_at TIMESTAMPTZ;
