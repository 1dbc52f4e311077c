-- A database an earlier mover set up kept the fleet's bookkeeping in columns
-- of its own org_migration_state (run_id, current_step, fail_detail). Carry
-- each org's progress into mover.org_progress, so that orgs mover migrated
-- keep their rows marked as mover's (revert and reset delete them) and an org
-- left started is found by the reconciler. Runs, settings, phases and the
-- audit log of that layout are not carried over: halt runs before upgrading.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'org_migration_state' AND column_name = 'current_step') THEN
    EXECUTE $sql$
      INSERT INTO mover.org_progress (migration_type, org_id, org_name, run_id, current_step, fail_detail, in_flight, rows_in_sql)
      SELECT migration_type, org_id, org_name, run_id, current_step, fail_detail, state = 'started',
             migration_type = 'phase_2_migration' AND state IN ('started', 'completed', 'purge_started', 'purge_successful')
      FROM org_migration_state
      WHERE migration_type IN ('phase_2_migration', 'phase_2_migration_prep')
      ON CONFLICT (migration_type, org_id) DO NOTHING
    $sql$;
  END IF;
END
$$;
