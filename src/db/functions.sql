-- Every SQL function mover defines, each in its current version. Applied with
-- CREATE OR REPLACE on every migrate (src/db/migrate.ts), before the numbered
-- migrations, which hold only tables, indexes, triggers and data moves: this
-- file is where a function is read and changed, as BullMQ keeps one script
-- per operation. Bodies are not checked when created (check_function_bodies
-- is off while this file runs), so a function may name a table a later
-- migration makes. A signature that changes is dropped here first: a
-- function's arguments and result are its identity in PostgreSQL.

DROP FUNCTION IF EXISTS mover.claim_org(text, text, bigint, text, boolean, text);
DROP FUNCTION IF EXISTS mover.claim_org(text, text, bigint, text, boolean, text, text);
DROP FUNCTION IF EXISTS mover.lease_and_claim(text, text, text, text, integer, bigint, text, boolean, text);
DROP FUNCTION IF EXISTS mover.replace_and_read_org_objects(text, text, text[], text[], text[], text[], timestamp[], timestamp[], text[], text[], text[], text[], timestamp[], timestamp[]);
DROP FUNCTION IF EXISTS mover.replace_org_objects(text, text, text[], text[], text[], text[], timestamp[], timestamp[], text[], text[], text[], text[], timestamp[], timestamp[]);
-- The fence was a function of its own for a while; it is inline in each statement now (a call cost 150 us a statement).
DROP FUNCTION IF EXISTS mover.hold_org(text, text, bigint, text, integer);

-- ---------------------------------------------------------------------------
-- Fencing (docs/architecture.md, "Fencing"): every write made for an org in
-- flight carries its delivery's lease token (p_owner) and the claim's
-- generation, and is refused by the statement itself when they are stale.
-- Checking the lease before sending a write is not enough: a process can
-- pause between the check and the write, or the write can wait in a socket,
-- while the lease lapses and another delivery finishes the org.
-- ---------------------------------------------------------------------------

-- Holds the org's lease for p_owner until the transaction ends (its progress
-- row locked), whatever its state: for work under the lease on an org at rest
-- (a preflight's verdict, a purge). Otherwise raises MVF01.
CREATE OR REPLACE FUNCTION mover.hold_lease(p_type text, p_org_id text, p_owner text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM mover.org_progress WHERE migration_type = p_type AND org_id = p_org_id AND lease_owner = p_owner FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'org % (%) is no longer leased to this delivery', p_org_id, p_type USING ERRCODE = 'MVF01';
  END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- The state machine's claim (see the from → to table in src/db/state-tracker.ts).
-- A delivery's start in one call: the org's lease, the org's state, the
-- kind's own preflight in Postgres and the claim through the concurrency gate
-- (docs/architecture.md, "A job's path"). In functions, so Postgres plans
-- them once per connection rather than on every delivery. Each statement of
-- a (volatile) PL/pgSQL function reads with a snapshot of its own: the org's
-- state is read after the lease, so it is never older than what the lease's
-- upsert waited for, and the in-flight count after the run row is locked, so
-- it sees every claim of the run committed before.
-- ---------------------------------------------------------------------------

-- Rows of the org in SQL that mover did not write (0 when the ones there are mover's).
CREATE OR REPLACE FUNCTION mover.foreign_row_count(p_type text, p_org_id text) RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN COALESCE((SELECT rows_in_sql FROM mover.org_progress WHERE migration_type = p_type AND org_id = p_org_id), false) THEN 0
    ELSE (SELECT count(*) FROM containers WHERE org_id = p_org_id::bpchar) + (SELECT count(*) FROM "groups" WHERE org_id = p_org_id::bpchar) END::integer
$$;

-- The claim, p_from → started (ready for a migration, completed for a
-- revert): only while the run is working with its breaker closed and fewer
-- orgs of the type are in flight fleet-wide than the run's concurrency, only
-- if the kind's preflight did not refuse the org (p_refused) and its guard in
-- Postgres (p_guard: 'foreign_rows', or NULL) counts no rows against it, and never
-- for an org this run has already finished (a revert's org comes back to
-- completed, its source state, when it is refused or fails: its result,
-- counted once in mover.run_counted, says it is done). Chef's
-- migration_start and migration_end are set only by a claim from ready: a
-- completed org that goes back keeps them. Only for the holder of the org's
-- lease (p_owner; else MVF01). Returns {guard_count, working, closed, room,
-- finished, claimed}.
CREATE OR REPLACE FUNCTION mover.claim_org(
  p_type text, p_org_id text, p_run_id bigint, p_first_step text, p_refused boolean, p_guard text, p_from text, p_owner text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  guard_count integer := 0;
  run_concurrency integer;
  working boolean := false;
  closed boolean := false;
  room boolean := false;
  finished boolean := false;
  claimed boolean := false;
  name text;
BEGIN
  -- Only the lease's holder claims (lease_and_claim has just taken it, in this same call).
  PERFORM 1 FROM mover.org_progress WHERE migration_type = p_type AND org_id = p_org_id AND lease_owner = p_owner FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'org % (%) is not leased to this delivery', p_org_id, p_type USING ERRCODE = 'MVF01';
  END IF;
  IF p_guard = 'foreign_rows' THEN
    guard_count := mover.foreign_row_count(p_type, p_org_id);
  END IF;
  -- Only an org back where its path starts (a revert's, at completed) can have ended in this run already; a ready org never has.
  IF p_from <> 'ready' THEN
    finished := EXISTS (SELECT 1 FROM mover.run_counted WHERE run_id = p_run_id AND item = 'result:' || p_org_id);
  END IF;
  -- Claims of one run are counted one at a time: the count below, read after the lock, sees every claim committed before.
  PERFORM 1 FROM mover.migration_runs WHERE id = p_run_id FOR UPDATE;
  -- The live-service guard may hold the run below the operator's concurrency (migrations/020_couchdb_guard.sql).
  SELECT LEAST(r.concurrency, COALESCE(r.effective_concurrency, r.concurrency)), r.breaker = 'closed' INTO run_concurrency, closed
    FROM mover.migration_runs r WHERE r.id = p_run_id AND r.state = 'working';
  working := FOUND;
  closed := COALESCE(closed, false);
  IF working THEN
    room := (SELECT count(*) FROM mover.org_progress WHERE migration_type = p_type AND in_flight) < run_concurrency;
  END IF;
  IF working AND closed AND room AND NOT finished AND NOT p_refused AND guard_count = 0 THEN
    UPDATE org_migration_state SET state = 'started',
      migration_start = CASE WHEN p_from = 'ready' THEN now() AT TIME ZONE 'utc' ELSE migration_start END,
      migration_end = CASE WHEN p_from = 'ready' THEN NULL ELSE migration_end END,
      fail_location = NULL
    WHERE migration_type = p_type AND org_id = p_org_id AND state = p_from::org_state
    RETURNING org_name INTO name;
    IF FOUND THEN
      INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, run_id, current_step, in_flight, state, claimed_at)
      VALUES (p_type, p_org_id, name, p_run_id, p_first_step, true, 'started', now())
      ON CONFLICT (migration_type, org_id) DO UPDATE SET org_name = EXCLUDED.org_name, run_id = p_run_id, current_step = p_first_step,
        fail_detail = NULL, fail_kind = NULL, state = 'started', requeues = CASE WHEN p.run_id = p_run_id THEN p.requeues ELSE 0 END,
        in_flight = true, claimed_at = now(), updated_at = now();
      claimed := true;
    END IF;
  END IF;
  RETURN jsonb_build_object('guard_count', guard_count, 'working', working, 'closed', closed, 'room', room, 'finished', finished, 'claimed', claimed);
END
$$;

-- The org's lease for p_owner, for p_lease_ms: taken if it is free (no owner,
-- or its time has passed) or p_owner's already. Returns its fencing epoch
-- (a new one from mover.lease_epochs when the lease changes hands, the same
-- when its holder takes it again), or null if another holds it.
CREATE OR REPLACE FUNCTION mover.take_lease(p_type text, p_org_id text, p_org_name text, p_owner text, p_lease_ms integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  epoch bigint;
BEGIN
  INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, lease_owner, lease_until, lease_epoch)
  VALUES (p_type, p_org_id, p_org_name, p_owner, now() + p_lease_ms * interval '1 millisecond', nextval('mover.lease_epochs'))
  ON CONFLICT (migration_type, org_id) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until,
    lease_epoch = CASE WHEN p.lease_owner = EXCLUDED.lease_owner AND p.lease_epoch IS NOT NULL THEN p.lease_epoch ELSE EXCLUDED.lease_epoch END
  WHERE p.lease_owner IS NULL OR p.lease_owner = EXCLUDED.lease_owner OR p.lease_until < now()
  RETURNING p.lease_epoch INTO epoch;
  RETURN epoch;
END
$$;

-- A delivery's start: the lease for p_owner, then the org as it stands, then,
-- if it is in p_from, the claim. Returns {leased:false}, or {leased, epoch
-- (the lease's fencing epoch, new when the lease changed hands), org (as read
-- before the claim; null if the org is not tracked), guard_count, working, closed,
-- room, finished, claimed}.
CREATE OR REPLACE FUNCTION mover.lease_and_claim(
  p_type text, p_org_id text, p_org_name text, p_owner text, p_lease_ms integer,
  p_run_id bigint, p_first_step text, p_refused boolean, p_guard text, p_from text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  epoch bigint;
  cur record;
  claim jsonb := jsonb_build_object('guard_count', 0, 'working', false, 'closed', false, 'room', false, 'finished', false, 'claimed', false);
BEGIN
  epoch := mover.take_lease(p_type, p_org_id, p_org_name, p_owner, p_lease_ms);
  IF epoch IS NULL THEN
    RETURN jsonb_build_object('leased', false);
  END IF;

  SELECT s.state::text AS state, p.run_id::text AS run_id, p.current_step, COALESCE(p.requeues, 0) AS requeues INTO cur
  FROM org_migration_state s LEFT JOIN mover.org_progress p ON p.migration_type = s.migration_type AND p.org_id = s.org_id
  WHERE s.migration_type = p_type AND s.org_id = p_org_id;
  IF NOT FOUND THEN
    RETURN claim || jsonb_build_object('leased', true, 'epoch', epoch, 'org', NULL);
  END IF;
  IF cur.state = p_from THEN
    claim := mover.claim_org(p_type, p_org_id, p_run_id, p_first_step, p_refused, p_guard, p_from, p_owner);
  END IF;
  RETURN claim || jsonb_build_object('leased', true, 'epoch', epoch,
    'org', jsonb_build_object('state', cur.state, 'run_id', cur.run_id, 'current_step', cur.current_step, 'requeues', cur.requeues));
END
$$;

-- ---------------------------------------------------------------------------
-- An org's rows in SQL.
-- ---------------------------------------------------------------------------

-- An org's containers and groups replaced in one call, for the delivery that
-- holds the org (its lease token, run and generation; else MVF01 and nothing
-- written): the rows an earlier delivery of the org left (mover's,
-- marked rows_in_sql) are deleted, then the new ones inserted. Fenced because
-- it deletes every row of the org: a stale copy landing after the switch
-- would delete what Chef wrote to SQL since. Two statements, one after the other, in a function: a
-- single statement with the DELETE and the INSERT as sibling CTEs shares one
-- snapshot, so its INSERT collided with the very rows it was deleting
-- (duplicate key on containers_pkey / groups_pkey) whenever a delivery ran
-- again after its copy. One round trip still, and atomic: the call is one
-- statement. Rows mover did not write are never touched: their count comes
-- back and nothing is written.
CREATE OR REPLACE FUNCTION mover.replace_org_objects(
  p_type text, p_org_id text, p_run_id bigint, p_owner text, p_generation integer,
  c_id text[], c_authz text[], c_name text[], c_by text[], c_created timestamp[], c_updated timestamp[],
  g_id text[], g_authz text[], g_name text[], g_by text[], g_created timestamp[], g_updated timestamp[]
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  owned boolean;
  foreign_rows integer;
BEGIN
  -- The fence: the org's progress row locked for this call, and only while the lease is p_owner's and the org
  -- still in flight in p_run_id at generation p_generation; else SQLSTATE MVF01 and nothing written.
  SELECT rows_in_sql INTO owned FROM mover.org_progress
  WHERE migration_type = p_type AND org_id = p_org_id AND run_id = p_run_id AND lease_owner = p_owner AND requeues = p_generation AND in_flight
  FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'org % (%) is no longer held by this delivery: its lease, run % or generation % moved on', p_org_id, p_type, p_run_id, p_generation
      USING ERRCODE = 'MVF01';
  END IF;
  IF owned THEN
    DELETE FROM containers WHERE org_id = p_org_id::bpchar;
    DELETE FROM "groups" WHERE org_id = p_org_id::bpchar;
  ELSE
    SELECT (SELECT count(*) FROM containers WHERE org_id = p_org_id::bpchar) + (SELECT count(*) FROM "groups" WHERE org_id = p_org_id::bpchar) INTO foreign_rows;
    IF foreign_rows > 0 THEN
      RETURN foreign_rows;
    END IF;
  END IF;
  INSERT INTO containers (id, org_id, authz_id, name, last_updated_by, created_at, updated_at)
    SELECT i, p_org_id, a, n, u, c, m FROM unnest(c_id, c_authz, c_name, c_by, c_created, c_updated) AS t(i, a, n, u, c, m);
  INSERT INTO "groups" (id, org_id, authz_id, name, last_updated_by, created_at, updated_at)
    SELECT i, p_org_id, a, n, u, c, m FROM unnest(g_id, g_authz, g_name, g_by, g_created, g_updated) AS t(i, a, n, u, c, m);
  IF NOT owned THEN
    UPDATE mover.org_progress SET rows_in_sql = true WHERE migration_type = p_type AND org_id = p_org_id;
  END IF;
  RETURN 0;
END
$$;

-- The copy's write answers with what SQL then holds for the org (no read
-- that a write could return: docs/architecture.md, "Round trips per org"):
-- verify compares the plan with these rows instead of reading them back in a
-- round trip of its own. The rows are read inside the same call, after the
-- inserts, exactly as readAllObjects (src/db/org-objects.ts) reads them.
CREATE OR REPLACE FUNCTION mover.replace_and_read_org_objects(
  p_type text, p_org_id text, p_run_id bigint, p_owner text, p_generation integer,
  c_id text[], c_authz text[], c_name text[], c_by text[], c_created timestamp[], c_updated timestamp[],
  g_id text[], g_authz text[], g_name text[], g_by text[], g_created timestamp[], g_updated timestamp[]
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  foreign_rows integer;
BEGIN
  foreign_rows := mover.replace_org_objects(p_type, p_org_id, p_run_id, p_owner, p_generation, c_id, c_authz, c_name, c_by, c_created, c_updated, g_id, g_authz, g_name, g_by, g_created, g_updated);
  IF foreign_rows > 0 THEN
    RETURN jsonb_build_object('foreign_rows', foreign_rows);
  END IF;
  RETURN jsonb_build_object('foreign_rows', 0, 'rows', COALESCE((
    SELECT jsonb_agg(jsonb_build_array(t, id, name, authz_id, last_updated_by)) FROM (
      SELECT 'containers' AS t, id, name, authz_id, last_updated_by FROM containers WHERE org_id = p_org_id::bpchar
      UNION ALL SELECT 'groups', id, name, authz_id, last_updated_by FROM "groups" WHERE org_id = p_org_id::bpchar) r), '[]'::jsonb));
END
$$;

-- ---------------------------------------------------------------------------
-- Counters.
-- ---------------------------------------------------------------------------

-- The orgs counted by state (mover.org_state_counts, migrations/008): one
-- statement's changes to org_progress.state, summed per counter row and
-- applied in key order (so two statements never wait on each other's counter
-- rows in a cycle); statements that leave every state as it was touch no
-- counter. Called by the statement triggers on mover.org_progress.
CREATE OR REPLACE FUNCTION mover.count_org_states() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO mover.org_state_counts AS c (migration_type, state, stripe, n)
      SELECT migration_type, state, hashtext(org_id) & 15, count(*) FROM new_rows WHERE state IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
      ON CONFLICT (migration_type, state, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO mover.org_state_counts AS c (migration_type, state, stripe, n)
      SELECT t, s, k, sum(d) FROM (
        SELECT migration_type AS t, state AS s, hashtext(org_id) & 15 AS k, 1 AS d FROM new_rows WHERE state IS NOT NULL
        UNION ALL
        SELECT migration_type, state, hashtext(org_id) & 15, -1 FROM old_rows WHERE state IS NOT NULL) x
      GROUP BY 1, 2, 3 HAVING sum(d) <> 0 ORDER BY 1, 2, 3
      ON CONFLICT (migration_type, state, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSE
    INSERT INTO mover.org_state_counts AS c (migration_type, state, stripe, n)
      SELECT migration_type, state, hashtext(org_id) & 15, -count(*) FROM old_rows WHERE state IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
      ON CONFLICT (migration_type, state, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END
$$;

-- A run's dark-time histogram (migrations/013) with one more org of `ms`
-- (unchanged for null): 100 ms buckets, the last one 60 s and more.
CREATE OR REPLACE FUNCTION mover.dark_hist_add(hist INTEGER[], ms INTEGER) RETURNS INTEGER[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  b INTEGER;
BEGIN
  IF ms IS NULL THEN
    RETURN hist;
  END IF;
  b := least(greatest(ms, 0) / 100, 600) + 1;
  hist[b] := COALESCE(hist[b], 0) + 1;
  RETURN hist;
END
$$;
