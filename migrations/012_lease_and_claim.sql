-- A delivery's start in one call (issue 10, item 5: claim, lock and step
-- bookkeeping folded together): the org's lease, the org's state, the
-- migration's own preflight in Postgres and the claim through the
-- concurrency gate. The same statements src/db/org-leases.ts (takeLease) and
-- src/db/state-tracker.ts (claimOrg) send, in a function so Postgres plans
-- them once per connection rather than on every delivery.
--
-- Each statement of a (volatile) PL/pgSQL function reads with a snapshot of
-- its own: the org's state is read after the lease, so it is never older
-- than what the lease's upsert waited for, and the in-flight count after the
-- run row is locked, so it sees every claim of the run committed before.

-- Rows of the org in SQL that mover did not write (0 when the ones there are mover's).
CREATE OR REPLACE FUNCTION mover.foreign_row_count(p_type text, p_org_id text) RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN COALESCE((SELECT rows_in_sql FROM mover.org_progress WHERE migration_type = p_type AND org_id = p_org_id), false) THEN 0
    ELSE (SELECT count(*) FROM containers WHERE org_id = p_org_id::bpchar) + (SELECT count(*) FROM "groups" WHERE org_id = p_org_id::bpchar) END::integer
$$;

-- p_guard names the kind's preflight in Postgres ('foreign_rows', or NULL);
-- p_refused is its preflight's verdict outside Postgres. Returns
-- {leased:false}, or {leased, org (as read before the claim, null if the org
-- is not tracked), unfit, working, closed, room, claimed}.
CREATE OR REPLACE FUNCTION mover.lease_and_claim(
  p_type text, p_org_id text, p_org_name text, p_owner text, p_lease_ms integer,
  p_run_id bigint, p_first_step text, p_refused boolean, p_guard text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  n integer;
  cur record;
  unfit integer := 0;
  run_concurrency integer;
  working boolean := false;
  closed boolean := false;
  room boolean := false;
  claimed boolean := false;
  name text;
BEGIN
  INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, lease_owner, lease_until)
  VALUES (p_type, p_org_id, p_org_name, p_owner, now() + p_lease_ms * interval '1 millisecond')
  ON CONFLICT (migration_type, org_id) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until
  WHERE p.lease_owner IS NULL OR p.lease_owner = EXCLUDED.lease_owner OR p.lease_until < now();
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n = 0 THEN
    RETURN jsonb_build_object('leased', false);
  END IF;

  SELECT s.state::text AS state, p.run_id::text AS run_id, p.current_step, COALESCE(p.requeues, 0) AS requeues INTO cur
  FROM org_migration_state s LEFT JOIN mover.org_progress p ON p.migration_type = s.migration_type AND p.org_id = s.org_id
  WHERE s.migration_type = p_type AND s.org_id = p_org_id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('leased', true, 'org', NULL, 'unfit', 0, 'working', false, 'closed', false, 'room', false, 'claimed', false);
  END IF;

  IF cur.state = 'ready' THEN
    IF p_guard = 'foreign_rows' THEN
      unfit := mover.foreign_row_count(p_type, p_org_id);
    END IF;
    -- Claims of one run are counted one at a time.
    PERFORM 1 FROM mover.migration_runs WHERE id = p_run_id FOR UPDATE;
    SELECT r.concurrency, r.breaker = 'closed' INTO run_concurrency, closed FROM mover.migration_runs r WHERE r.id = p_run_id AND r.state = 'working';
    working := FOUND;
    closed := COALESCE(closed, false);
    IF working THEN
      room := (SELECT count(*) FROM mover.org_progress WHERE migration_type = p_type AND in_flight) < run_concurrency;
    END IF;
    IF working AND closed AND room AND NOT p_refused AND unfit = 0 THEN
      UPDATE org_migration_state SET state = 'started', migration_start = now() AT TIME ZONE 'utc', migration_end = NULL, fail_location = NULL
      WHERE migration_type = p_type AND org_id = p_org_id AND state = 'ready'
      RETURNING org_name INTO name;
      IF FOUND THEN
        UPDATE mover.org_progress SET org_name = name, run_id = p_run_id, current_step = p_first_step, fail_detail = NULL, fail_kind = NULL, state = 'started',
          requeues = CASE WHEN run_id = p_run_id THEN requeues ELSE 0 END, in_flight = true, updated_at = now()
        WHERE migration_type = p_type AND org_id = p_org_id;
        claimed := true;
      END IF;
    END IF;
  END IF;

  RETURN jsonb_build_object('leased', true, 'org', jsonb_build_object('state', cur.state, 'run_id', cur.run_id, 'current_step', cur.current_step, 'requeues', cur.requeues),
    'unfit', unfit, 'working', working, 'closed', closed, 'room', room, 'claimed', claimed);
END
$$;
