-- A delivery's start in one call (claim, lock and step bookkeeping folded
-- together: docs/architecture.md, "A job's path"): the org's lease (as takeLease in
-- src/db/org-leases.ts takes it), the org's state, the migration's own
-- preflight in Postgres and the claim through the concurrency gate. In
-- functions, so Postgres plans them once per connection rather than on every
-- delivery.
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

-- The claim, ready → started (see claimOrg in src/db/state-tracker.ts): only
-- while the run is working with its breaker closed and fewer orgs of the
-- type are in flight fleet-wide than the run's concurrency, and only if the
-- kind's preflight did not refuse the org (p_refused) and its guard in
-- Postgres (p_guard: 'foreign_rows', or NULL) counts nothing unfit.
-- Returns {unfit, working, closed, room, claimed}.
CREATE OR REPLACE FUNCTION mover.claim_org(
  p_type text, p_org_id text, p_run_id bigint, p_first_step text, p_refused boolean, p_guard text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  unfit integer := 0;
  run_concurrency integer;
  working boolean := false;
  closed boolean := false;
  room boolean := false;
  claimed boolean := false;
  name text;
BEGIN
  IF p_guard = 'foreign_rows' THEN
    unfit := mover.foreign_row_count(p_type, p_org_id);
  END IF;
  -- Claims of one run are counted one at a time: the count below, read after the lock, sees every claim committed before.
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
      INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, run_id, current_step, in_flight, state)
      VALUES (p_type, p_org_id, name, p_run_id, p_first_step, true, 'started')
      ON CONFLICT (migration_type, org_id) DO UPDATE SET org_name = EXCLUDED.org_name, run_id = p_run_id, current_step = p_first_step,
        fail_detail = NULL, fail_kind = NULL, state = 'started', requeues = CASE WHEN p.run_id = p_run_id THEN p.requeues ELSE 0 END,
        in_flight = true, updated_at = now();
      claimed := true;
    END IF;
  END IF;
  RETURN jsonb_build_object('unfit', unfit, 'working', working, 'closed', closed, 'room', room, 'claimed', claimed);
END
$$;

-- A delivery's start: the lease for p_owner, then the org as it stands, then,
-- if it is ready, the claim. Returns {leased:false}, or {leased, org (as
-- read before the claim; null if the org is not tracked), unfit, working,
-- closed, room, claimed}.
CREATE OR REPLACE FUNCTION mover.lease_and_claim(
  p_type text, p_org_id text, p_org_name text, p_owner text, p_lease_ms integer,
  p_run_id bigint, p_first_step text, p_refused boolean, p_guard text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  n integer;
  cur record;
  claim jsonb := jsonb_build_object('unfit', 0, 'working', false, 'closed', false, 'room', false, 'claimed', false);
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
    RETURN claim || jsonb_build_object('leased', true, 'org', NULL);
  END IF;
  IF cur.state = 'ready' THEN
    claim := mover.claim_org(p_type, p_org_id, p_run_id, p_first_step, p_refused, p_guard);
  END IF;
  RETURN claim || jsonb_build_object('leased', true,
    'org', jsonb_build_object('state', cur.state, 'run_id', cur.run_id, 'current_step', cur.current_step, 'requeues', cur.requeues));
END
$$;
