// The legacy moser_state_tracker on Chef's own org_migration_state table, one
// conditional statement per operation: the expected current state sits in the
// WHERE clause and the changed rows come back, so two workers can never both
// start one org and a stale job can never move an org that has moved on.
// Chef's table keeps only Chef's columns; what the fleet needs beside them
// (run, step, failure detail, in flight, rows written) is in mover.org_progress,
// written by the same statements. Every state change is here (the state
// machine: docs/domain.md, section 5); the reads are in src/db/org-states.ts.
// (src/db/org-objects.ts marks org_progress.rows_in_sql, whose rows mover
// wrote, in the statements that write or delete them.) Each statement that
// changes an org's state also writes it to org_progress.state, the mirror
// the reads at scale go by (migrations/008_org_state_mirror.sql).
import { inTransaction, rideThroughDb, type Db, type DbClient } from '../stores/postgres.js';
import type { OrgState, OrgStateRow } from './org-states.js';

export { ORG_STATES, type OrgState } from './org-states.js';

type Q = Db | DbClient;

/**
 * The CTE that mirrors the orgs a statement moved (its CTE `moved`, which
 * returns migration_type, org_id, org_name and state) into org_progress.state,
 * creating the org's progress row if it has none. Only for statements that
 * do not otherwise write the same progress rows.
 */
const MIRROR = `mirror AS (
  INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, state)
  SELECT migration_type, org_id, org_name, state::text FROM moved
  ON CONFLICT (migration_type, org_id) DO UPDATE SET state = EXCLUDED.state)`;

/**
 * Legacy insert_one_org: 'duplicate' is the legacy 23505, "already captured".
 * Chef's key is (org_id, migration_type); a name already captured for the
 * type (an org deleted and made again under its name has a new guid) counts
 * as captured too, so a name stands for one org of a type.
 */
export async function insertOrgs(q: Q, type: string, orgs: { name: string; guid: string }[]): Promise<{ inserted: string[]; duplicate: string[] }> {
  if (!orgs.length) return { inserted: [], duplicate: [] };
  const { rows } = await q.query(
    `WITH moved AS (
       INSERT INTO org_migration_state (org_name, org_id, migration_type)
       SELECT n, g, $3 FROM unnest($1::text[], $2::text[]) AS t(n, g)
       WHERE NOT EXISTS (SELECT 1 FROM org_migration_state s WHERE s.migration_type = $3 AND s.org_name = t.n)
       ON CONFLICT DO NOTHING RETURNING migration_type, org_id, org_name, state),
     ${MIRROR}
     SELECT org_name FROM moved`,
    [orgs.map((o) => o.name), orgs.map((o) => o.guid), type],
  );
  const inserted = new Set(rows.map((r) => r.org_name as string));
  return { inserted: orgs.filter((o) => inserted.has(o.name)).map((o) => o.name), duplicate: orgs.filter((o) => !inserted.has(o.name)).map((o) => o.name) };
}

export type ClaimResult = { claimed: true } | { claimed: false; reason: 'run_not_working' | 'breaker_open' | 'at_capacity' | 'not_ready' };

/**
 * ready → started, only while the run is working and fewer orgs of this
 * migration type are in flight fleet-wide than the run's concurrency: an org
 * may be dark only while in flight, so this is what bounds the orgs dark at
 * once, whatever BullMQ does with stalled or re-delivered jobs.
 *
 * mover.claim_org (migrations/012_lease_and_claim.sql) locks the run row
 * first, so claims of one run are counted one at a time: the count, read
 * after the lock is granted, sees every claim committed before it; the lock
 * is held only while the server runs the call. A delivery claims through
 * leaseAndClaim (below), which calls the same function under the org's
 * lease; this is the claim alone (tests, tools).
 */
export function claimOrg(db: Db, type: string, orgId: string, runId: string, firstStep = 'start'): Promise<ClaimResult> {
  // Safe to send again after a lost connection: if the first one committed, the
  // org is no longer ready and this says 'not_ready'.
  return rideThroughDb(db, 'claim', async () => {
    const { rows } = await db.query({
      name: 'claim-org',
      text: `SELECT mover.claim_org($1, $2, $3, $4, false, NULL) AS r`,
      values: [type, orgId, runId, firstStep],
    });
    const r = rows[0].r as { working: boolean; closed: boolean; room: boolean; claimed: boolean };
    return claimResult(r);
  });
}

const claimResult = (r: { working: boolean; closed: boolean; room: boolean; claimed: boolean }): ClaimResult =>
  r.claimed
    ? { claimed: true }
    : { claimed: false, reason: !r.working ? 'run_not_working' : !r.closed ? 'breaker_open' : !r.room ? 'at_capacity' : 'not_ready' };

/** A kind's preflight in Postgres, checked inside the claim (mover.lease_and_claim knows each by name): 'foreign_rows' counts the org's containers and groups rows mover did not write. */
export type ClaimGuard = 'foreign_rows';

/** What a delivery asks of leaseAndClaim besides the concurrency gate: its preflight's verdicts. */
export interface ClaimAsk {
  runId: string;
  firstStep: string;
  /** The kind's preflight refused the org outside Postgres (its routing, say): it is not claimed. */
  refused: boolean;
  /** The kind's preflight in Postgres: a non-zero count makes the org unfit, and it is not claimed. */
  guard?: ClaimGuard;
}

/** An org as a delivery's start found it: what decides whether it claims, resumes or skips. */
export type OrgStanding = Pick<OrgStateRow, 'state' | 'run_id' | 'current_step' | 'requeues'>;

export type LeaseAndClaim = { leased: false } | { leased: true; org: OrgStanding | null; claim: ClaimResult; unfit: number };

/**
 * A delivery's start in one round trip (mover.lease_and_claim,
 * migrations/012_lease_and_claim.sql): takes the org's lease for `owner`
 * (as takeLease), then, holding it, claims the org (as claimOrg) unless the
 * preflight refused it or its guard found it unfit; answers the org as it
 * stood before the claim, read after the lease. Safe to send again after a
 * lost connection: a first attempt that committed shows as the org started
 * by this run.
 */
export function leaseAndClaim(db: Db, type: string, orgId: string, orgName: string, owner: string, leaseMs: number, ask: ClaimAsk): Promise<LeaseAndClaim> {
  return rideThroughDb(db, 'lease and claim', async () => {
    const { rows } = await db.query({
      name: 'lease-and-claim',
      text: `SELECT mover.lease_and_claim($1, $2, $3, $4, $5, $6, $7, $8, $9) AS r`,
      values: [type, orgId, orgName, owner, Math.round(leaseMs), ask.runId, ask.firstStep, ask.refused, ask.guard ?? null],
    });
    const r = rows[0].r as { leased: boolean; org: OrgStanding | null; unfit: number; working: boolean; closed: boolean; room: boolean; claimed: boolean };
    if (!r.leased) return { leased: false };
    return { leased: true, org: r.org, claim: claimResult(r), unfit: r.unfit };
  });
}

/** Records the step an in-flight org is in, so a resumed or reconciled job knows where it stood. */
export async function setStep(q: Q, type: string, orgId: string, runId: string, step: string, leaseOwner: string | null = null): Promise<boolean> {
  const { rowCount } = await q.query({
    name: 'set-step',
    text: `UPDATE mover.org_progress SET current_step = $4, updated_at = now()
       WHERE migration_type = $1 AND org_id = $2 AND in_flight AND run_id = $3 AND ($5::text IS NULL OR lease_owner = $5)`,
    values: [type, orgId, runId, step, leaseOwner],
  });
  return rowCount === 1;
}

/**
 * started → completed, for the run that started it, and counted in the run
 * by the same statement (one round trip, and never counted twice). Given the
 * org lease's owner token, only for the lease's holder, and it gives the
 * lease up too.
 */
export async function completeOrg(
  q: Q,
  type: string,
  orgId: string,
  runId: string,
  leaseOwner: string | null = null,
  darkMs: number | null = null,
): Promise<{ runMayBeDone: boolean } | null> {
  const { rows } = await q.query({
    name: 'complete-org',
    text: `WITH mine AS (SELECT run_id FROM mover.org_progress WHERE migration_type = $1 AND org_id = $2 AND run_id = $3 AND ($4::text IS NULL OR lease_owner = $4)),
       moved AS (
         UPDATE org_migration_state SET state = 'completed', migration_end = now() AT TIME ZONE 'utc'
         WHERE migration_type = $1 AND org_id = $2 AND state = 'started' AND EXISTS (SELECT 1 FROM mine) RETURNING org_id),
       progress AS (
         UPDATE mover.org_progress SET in_flight = false, current_step = NULL, state = 'completed', updated_at = now(), dark_ms = $5,
           lease_owner = CASE WHEN lease_owner = $4 THEN NULL ELSE lease_owner END, lease_until = CASE WHEN lease_owner = $4 THEN NULL ELSE lease_until END
         WHERE migration_type = $1 AND org_id IN (SELECT org_id FROM moved) RETURNING run_id)
     UPDATE mover.migration_runs r SET orgs_finished = orgs_finished + 1, dark_hist = mover.dark_hist_add(r.dark_hist, $5::int), dark_max_ms = GREATEST(r.dark_max_ms, $5::int)
     FROM progress WHERE r.id = progress.run_id
     RETURNING r.orgs_finished + r.orgs_skipped >= r.enqueued OR r.state <> 'working' AS run_may_be_done`,
    values: [type, orgId, runId, leaseOwner, darkMs],
  });
  return rows[0] ? { runMayBeDone: rows[0].run_may_be_done } : null;
}

export type FailKind = 'data' | 'infrastructure';

/**
 * started → failed with the step that failed, for the run that started it,
 * counted in the run and kept in the org's failure history, by one statement.
 */
export async function failOrg(
  q: Q,
  type: string,
  orgId: string,
  runId: string,
  location: string,
  detail: string,
  kind: FailKind = 'data',
  darkMs: number | null = null,
): Promise<boolean> {
  const { rows } = await q.query(
    `WITH mine AS (SELECT 1 FROM mover.org_progress WHERE migration_type = $1 AND org_id = $2 AND run_id = $3),
       moved AS (
         UPDATE org_migration_state SET state = 'failed', fail_location = left($4, 50), migration_end = now() AT TIME ZONE 'utc'
         WHERE migration_type = $1 AND org_id = $2 AND state = 'started' AND EXISTS (SELECT 1 FROM mine) RETURNING org_id, org_name),
       progress AS (
         UPDATE mover.org_progress SET fail_detail = $5, fail_kind = $6, in_flight = false, current_step = NULL, state = 'failed', updated_at = now(), dark_ms = $7
         WHERE migration_type = $1 AND org_id IN (SELECT org_id FROM moved) RETURNING run_id),
       history AS (
         INSERT INTO mover.org_failures (migration_type, org_id, org_name, run_id, step, kind, detail)
         SELECT $1, org_id, org_name, $3, left($4, 50), $6, $5 FROM moved)
     UPDATE mover.migration_runs r SET orgs_finished = orgs_finished + 1, orgs_failed = orgs_failed + 1,
       dark_hist = mover.dark_hist_add(r.dark_hist, $7::int), dark_max_ms = GREATEST(r.dark_max_ms, $7::int)
     FROM progress WHERE r.id = progress.run_id RETURNING 1`,
    [type, orgId, runId, location, detail, kind, darkMs],
  );
  return rows.length === 1;
}

/** How many times an org goes back to ready in one run (a lost job, a closing breaker) before it is failed instead. */
export const MAX_REQUEUES = 3;

/**
 * started → ready in the same run, for an org whose job was lost and that has
 * just been restored: it will be claimed again by a new job. Not counted as
 * finished; false if it moved on, or was requeued MAX_REQUEUES times already.
 */
export async function requeueOrg(q: Q, type: string, orgId: string, runId: string): Promise<boolean> {
  const { rows } = await q.query(
    `WITH mine AS (SELECT 1 FROM mover.org_progress WHERE migration_type = $1 AND org_id = $2 AND run_id = $3 AND requeues < $4),
       moved AS (
         UPDATE org_migration_state SET state = 'ready', migration_start = NULL
         WHERE migration_type = $1 AND org_id = $2 AND state = 'started' AND EXISTS (SELECT 1 FROM mine) RETURNING org_id)
     UPDATE mover.org_progress SET in_flight = false, current_step = NULL, requeues = requeues + 1, state = 'ready', updated_at = now()
     WHERE migration_type = $1 AND org_id IN (SELECT org_id FROM moved) RETURNING 1`,
    [type, orgId, runId, MAX_REQUEUES],
  );
  return rows.length === 1;
}

/**
 * failed → ready for the orgs of a run that failed because of the
 * infrastructure (a breaker that closes retries them), uncounted from the
 * run's finished and failed orgs by the same statement. Their failures stay
 * in mover.org_failures.
 */
export async function retryInfrastructureFailures(q: Q, type: string, runId: string): Promise<{ org_name: string; org_id: string }[]> {
  const { rows } = await q.query(
    `WITH candidates AS (
       SELECT org_id FROM mover.org_progress
       WHERE migration_type = $1 AND run_id = $2 AND fail_kind = 'infrastructure' AND NOT in_flight AND requeues < $3),
       moved AS (
         UPDATE org_migration_state SET state = 'ready', fail_location = NULL, migration_start = NULL, migration_end = NULL
         WHERE migration_type = $1 AND state = 'failed' AND org_id IN (SELECT org_id FROM candidates) RETURNING org_id, org_name),
       progress AS (
         UPDATE mover.org_progress p SET fail_kind = NULL, fail_detail = NULL, requeues = requeues + 1, state = 'ready', updated_at = now()
         FROM moved WHERE p.migration_type = $1 AND p.org_id = moved.org_id),
       counted AS (
         UPDATE mover.migration_runs SET orgs_finished = orgs_finished - (SELECT count(*) FROM moved), orgs_failed = orgs_failed - (SELECT count(*) FROM moved)
         WHERE id = $2 AND EXISTS (SELECT 1 FROM moved))
     SELECT org_name, org_id FROM moved ORDER BY org_id`,
    [type, runId, MAX_REQUEUES],
  );
  return rows;
}

/**
 * Locks the org's state and progress rows (for a restore in the caller's
 * transaction) and says whether it is still started by this run, and, given
 * a lease token, still held by that lease: an org that completed or failed
 * meanwhile, or that another delivery took over, must not be touched.
 */
export async function lockStartedOrg(c: DbClient, type: string, orgId: string, runId: string, leaseOwner: string | null = null): Promise<boolean> {
  const { rows } = await c.query(
    `SELECT s.state, p.run_id::text AS run_id, p.lease_owner FROM org_migration_state s
     JOIN mover.org_progress p ON p.migration_type = s.migration_type AND p.org_id = s.org_id
     WHERE s.migration_type = $1 AND s.org_id = $2 FOR UPDATE OF s, p`,
    [type, orgId],
  );
  return rows[0]?.state === 'started' && rows[0].run_id === runId && (leaseOwner === null || rows[0].lease_owner === leaseOwner);
}

/**
 * ready → failed for an org that failed its preflight, never started (so
 * nothing of it changed), counted in the run; only while the run works.
 */
export async function failUnstarted(q: Q, type: string, orgId: string, runId: string, location: string, detail: string): Promise<boolean> {
  const { rows } = await q.query(
    `WITH moved AS (
       UPDATE org_migration_state SET state = 'failed', fail_location = left($4, 50), migration_start = now() AT TIME ZONE 'utc', migration_end = now() AT TIME ZONE 'utc'
       WHERE migration_type = $1 AND org_id = $2 AND state = 'ready' AND EXISTS (SELECT 1 FROM mover.migration_runs WHERE id = $3 AND state = 'working')
       RETURNING org_name),
     progress AS (
       INSERT INTO mover.org_progress (migration_type, org_id, org_name, run_id, fail_detail, fail_kind, state) SELECT $1, $2, org_name, $3, $5, 'data', 'failed' FROM moved
       ON CONFLICT (migration_type, org_id) DO UPDATE SET org_name = EXCLUDED.org_name, run_id = $3, fail_detail = $5, fail_kind = 'data', current_step = NULL, state = 'failed', updated_at = now()),
     history AS (
       INSERT INTO mover.org_failures (migration_type, org_id, org_name, run_id, step, kind, detail) SELECT $1, $2, org_name, $3, left($4, 50), 'data', $5 FROM moved)
     UPDATE mover.migration_runs SET orgs_finished = orgs_finished + 1, orgs_failed = orgs_failed + 1 FROM moved WHERE id = $3 RETURNING 1`,
    [type, orgId, runId, location, detail],
  );
  return rows.length === 1;
}

/** holding → ready: all of them (legacy ready_remaining_migration) or the named ones. */
export async function readyHolding(q: Q, type: string, names?: string[]): Promise<string[]> {
  const { rows } = await q.query(
    `WITH moved AS (
       UPDATE org_migration_state SET state = 'ready'
       WHERE migration_type = $1 AND state = 'holding' AND ($2::text[] IS NULL OR org_name = ANY($2))
       RETURNING migration_type, org_id, org_name, state),
     ${MIRROR}
     SELECT org_name FROM moved`,
    [type, names ?? null],
  );
  return rows.map((r) => r.org_name);
}

/** A conditional move of the named orgs between two resting states, returning the names that moved. */
export async function moveOrgs(q: Q, type: string, names: string[], from: OrgState, to: OrgState): Promise<string[]> {
  const { rows } = await q.query(
    `WITH moved AS (
       UPDATE org_migration_state SET state = $4::org_state, fail_location = CASE WHEN $4::org_state = 'holding' THEN NULL ELSE fail_location END
       WHERE migration_type = $1 AND org_name = ANY($2) AND state = $3 RETURNING migration_type, org_id, org_name, state),
     ${MIRROR}
     SELECT org_name FROM moved`,
    [type, names, from, to],
  );
  return rows.map((r) => r.org_name);
}

/** One org, by id, from one state to another; false if it was not in `from` (it moved on meanwhile). */
export async function moveOrg(q: Q, type: string, orgId: string, from: OrgState, to: OrgState): Promise<boolean> {
  const { rows } = await q.query(
    `WITH moved AS (
       UPDATE org_migration_state SET state = $4 WHERE migration_type = $1 AND org_id = $2 AND state = $3 RETURNING migration_type, org_id, org_name, state),
     ${MIRROR}
     SELECT 1 FROM moved`,
    [type, orgId, from, to],
  );
  return rows.length === 1;
}

/** Legacy force_org_to_state: the operator's override, no guard by design (an org forced out of 'started' is no longer in flight). */
export async function forceState(q: Q, type: string, orgName: string, to: OrgState): Promise<boolean> {
  const { rows } = await q.query(
    `WITH moved AS (UPDATE org_migration_state SET state = $3 WHERE migration_type = $1 AND org_name = $2 RETURNING org_id, org_name),
       progress AS (
         INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, state) SELECT $1, org_id, org_name, $3 FROM moved
         ON CONFLICT (migration_type, org_id) DO UPDATE SET in_flight = ($3 = 'started' AND p.in_flight), current_step = NULL, state = $3, updated_at = now())
     SELECT count(*)::int AS n FROM moved`,
    [type, orgName, to],
  );
  return rows[0].n === 1;
}

/**
 * An org marked in flight whose state says otherwise (an operator forced it,
 * or edited the table by hand) would hold a place in the concurrency for
 * ever: the reconciler clears such marks.
 */
export async function clearStaleInFlight(q: Q, type: string): Promise<string[]> {
  const { rows } = await q.query(
    `UPDATE mover.org_progress p SET in_flight = false, updated_at = now()
     WHERE p.migration_type = $1 AND p.in_flight
       AND NOT EXISTS (SELECT 1 FROM org_migration_state s WHERE s.migration_type = p.migration_type AND s.org_id = p.org_id AND s.state = 'started')
     RETURNING p.org_name`,
    [type],
  );
  return rows.map((r) => r.org_name);
}

/** failed → holding; the org's SQL rows that mover wrote go in the same transaction. */
export async function resetOrgs(db: Db, type: string, names: string[], deleteRows: (c: DbClient, orgId: string) => Promise<unknown>): Promise<string[]> {
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(
      `WITH moved AS (
         UPDATE org_migration_state SET state = 'holding', fail_location = NULL
         WHERE migration_type = $1 AND org_name = ANY($2) AND state = 'failed' RETURNING org_name, org_id),
       progress AS (
         INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, state) SELECT $1, org_id, org_name, 'holding' FROM moved
         ON CONFLICT (migration_type, org_id) DO UPDATE SET fail_detail = NULL, current_step = NULL, state = 'holding', updated_at = now())
       SELECT org_name, org_id FROM moved`,
      [type, names],
    );
    for (const r of rows) await deleteRows(c, r.org_id);
    return rows.map((r) => r.org_name as string);
  });
}

/** The revert's mark on a migrated org, set before anything changes, so the reconciler can put the org back if the revert job is lost. */
export const revertMark = (runId: string) => `revert:${runId}`;

export async function markReverting(q: Q, type: string, orgId: string, runId: string): Promise<void> {
  await q.query(`UPDATE mover.org_progress SET current_step = $3, updated_at = now() WHERE migration_type = $1 AND org_id = $2`, [
    type,
    orgId,
    revertMark(runId),
  ]);
}

export async function clearRevertMark(q: Q, type: string, orgId: string): Promise<void> {
  await q.query(
    `UPDATE mover.org_progress SET current_step = NULL, updated_at = now() WHERE migration_type = $1 AND org_id = $2 AND current_step LIKE 'revert:%'`,
    [type, orgId],
  );
}

/**
 * completed → ready (the revert), its run and failure cleared; false if it
 * moved on meanwhile. The revert mark stays until the org is up again, so a
 * revert lost after this commit is still found. The caller deletes the org's
 * rows in the same transaction.
 */
export async function revertOrg(q: Q, type: string, orgId: string, leaseOwner: string | null = null): Promise<boolean> {
  const { rows } = await q.query(
    `WITH moved AS (
       UPDATE org_migration_state SET state = 'ready', migration_start = NULL, migration_end = NULL, fail_location = NULL
       WHERE migration_type = $1 AND org_id = $2 AND state = 'completed'
         AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM mover.org_progress WHERE migration_type = $1 AND org_id = $2 AND lease_owner = $3))
       RETURNING org_id),
     progress AS (
       UPDATE mover.org_progress p SET run_id = NULL, fail_detail = NULL, state = 'ready', updated_at = now()
       FROM moved WHERE p.migration_type = $1 AND p.org_id = moved.org_id)
     SELECT count(*)::int AS n FROM moved`,
    [type, orgId, leaseOwner],
  );
  return rows[0].n === 1;
}

/**
 * Marks the orgs a run has just taken (queued a job for) with its run id, so
 * an org whose job Redis lost before any worker claimed it can still be found
 * and queued again. Orgs in flight in another run are left alone.
 */
export async function takeOrgs(q: Q, type: string, runId: string, orgs: { name: string; guid: string }[]): Promise<void> {
  if (!orgs.length) return;
  await q.query(
    `INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, run_id, state)
     SELECT $1, g, n, $2, 'ready' FROM unnest($3::text[], $4::text[]) AS t(g, n)
     ON CONFLICT (migration_type, org_id) DO UPDATE SET run_id = $2, requeues = 0, updated_at = now() WHERE NOT p.in_flight`,
    [type, runId, orgs.map((o) => o.guid), orgs.map((o) => o.name)],
  );
}

/** Orgs one statement of the resync covers: short statements, so an operator's read never waits behind a million-row one. */
export const RESYNC_BATCH = 5_000;

/**
 * Catches the state mirror (org_progress.state) up with Chef's table where
 * something other than mover changed it (an operator's hand edit, the legacy
 * tool, or a Chef database mover starts on for the first time, with a
 * million rows it never wrote): the reconciler runs it now and then. Returns
 * how many orgs it fixed.
 *
 * One scan finds whether anything differs (the usual answer: nothing); only
 * then it walks Chef's table in RESYNC_BATCH orgs at a time, each batch one
 * statement (its missing mirror rows inserted, its differing states set)
 * with a short pause between, then the mirror rows whose org is gone. A
 * mirror row that moved since a batch read it is left to the statement that
 * moved it. While it adds many rows, the mirror's statistics are taken again
 * (ANALYZE) each time it has doubled, so no plan is made for the empty table
 * it was.
 */
export async function resyncStateMirror(q: Q, opts: { batch?: number; pauseMs?: number } = {}): Promise<number> {
  const batch = opts.batch ?? RESYNC_BATCH;
  const pause = () => new Promise((r) => setTimeout(r, opts.pauseMs ?? 20));
  const { rows } = await q.query(
    `SELECT EXISTS (
       SELECT 1 FROM org_migration_state s FULL JOIN mover.org_progress p ON p.migration_type = s.migration_type AND p.org_id = s.org_id
       WHERE (s.org_id IS NULL AND p.state IS NOT NULL) OR (s.org_id IS NOT NULL AND p.state IS DISTINCT FROM s.state::text)) AS differs`,
  );
  if (!rows[0].differs) return 0;
  let inserted = 0;
  let updated = 0;
  let analyzedAt = batch / 2;
  let after: [string, string] = ['', ''];
  for (;;) {
    const r = (
      await q.query({
        name: 'resync-mirror-batch',
        text: `WITH batch AS (
             SELECT s.migration_type, s.org_id, s.org_name, s.state::text AS state, p.org_id IS NULL AS missing, p.state AS was
             FROM org_migration_state s LEFT JOIN mover.org_progress p ON p.migration_type = s.migration_type AND p.org_id = s.org_id
             WHERE (s.org_id, s.migration_type) > ($1, $2) ORDER BY s.org_id, s.migration_type LIMIT $3),
           ins AS (
             INSERT INTO mover.org_progress (migration_type, org_id, org_name, state)
             SELECT migration_type, org_id, org_name, state FROM batch WHERE missing
             ON CONFLICT (migration_type, org_id) DO NOTHING RETURNING 1),
           upd AS (
             UPDATE mover.org_progress p SET state = b.state FROM batch b
             WHERE NOT b.missing AND b.was IS DISTINCT FROM b.state
               AND p.migration_type = b.migration_type AND p.org_id = b.org_id AND p.state IS NOT DISTINCT FROM b.was RETURNING 1)
         SELECT (SELECT org_id FROM batch ORDER BY org_id DESC, migration_type DESC LIMIT 1) AS last_id,
                (SELECT migration_type FROM batch ORDER BY org_id DESC, migration_type DESC LIMIT 1) AS last_type,
                (SELECT count(*) FROM batch)::int AS n, (SELECT count(*) FROM ins)::int AS inserted, (SELECT count(*) FROM upd)::int AS updated`,
        values: [after[0], after[1], batch],
      })
    ).rows[0];
    inserted += r.inserted;
    updated += r.updated;
    // The planner must not go on taking the mirror for the empty table it was before a first resync: its statistics are taken again each time it has doubled.
    if (inserted >= analyzedAt * 2) {
      await q.query('ANALYZE mover.org_progress');
      analyzedAt = inserted;
    }
    if (r.n < batch) break;
    after = [r.last_id, r.last_type];
    await pause();
  }
  let gone = 0;
  let afterGone: [string, string] = ['', ''];
  for (;;) {
    const r = (
      await q.query({
        name: 'resync-mirror-gone',
        text: `WITH batch AS (
             SELECT migration_type, org_id, state FROM mover.org_progress WHERE (migration_type, org_id) > ($1, $2) ORDER BY migration_type, org_id LIMIT $3),
           cleared AS (
             UPDATE mover.org_progress p SET state = NULL FROM batch b
             WHERE b.state IS NOT NULL AND p.migration_type = b.migration_type AND p.org_id = b.org_id AND p.state IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM org_migration_state s WHERE s.migration_type = p.migration_type AND s.org_id = p.org_id) RETURNING 1)
         SELECT (SELECT migration_type FROM batch ORDER BY migration_type DESC, org_id DESC LIMIT 1) AS last_type,
                (SELECT org_id FROM batch ORDER BY migration_type DESC, org_id DESC LIMIT 1) AS last_id,
                (SELECT count(*) FROM batch)::int AS n, (SELECT count(*) FROM cleared)::int AS cleared`,
        values: [afterGone[0], afterGone[1], batch],
      })
    ).rows[0];
    gone += r.cleared;
    if (r.n < batch) break;
    afterGone = [r.last_type, r.last_id];
    await pause();
  }
  return inserted + updated + gone;
}

const COUNT_TRUTH = `SELECT migration_type, state, hashtext(org_id) & 15 AS stripe, count(*) AS n FROM mover.org_progress WHERE state IS NOT NULL GROUP BY 1, 2, 3`;

/**
 * Puts the counters by state right if they drifted from the mirror (a
 * TRUNCATE, triggers disabled by hand): compared on one snapshot of both, and
 * only if they differ rebuilt with the counters locked, so state changes wait
 * for the rebuild (a second at a million orgs) instead of being lost by it.
 * Returns how many counter rows were wrong.
 */
export async function repairStateCounts(db: Db): Promise<number> {
  const wrong = await inTransaction(db, async (c) => {
    await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows } = await c.query(
      `SELECT count(*)::int AS n FROM (${COUNT_TRUTH}) t
       FULL JOIN (SELECT * FROM mover.org_state_counts WHERE n <> 0) c USING (migration_type, state, stripe)
       WHERE COALESCE(t.n, 0) <> COALESCE(c.n, 0)`,
    );
    return rows[0].n as number;
  });
  if (!wrong) return 0;
  await inTransaction(db, async (c) => {
    // Every state change waits behind this lock's request: never for long (a lock timeout skips the rebuild to the next pass).
    await c.query(`SET LOCAL lock_timeout = '2s'`);
    await c.query('LOCK TABLE mover.org_state_counts IN EXCLUSIVE MODE');
    await c.query('DELETE FROM mover.org_state_counts');
    await c.query(`INSERT INTO mover.org_state_counts (migration_type, state, stripe, n) ${COUNT_TRUTH}`);
  });
  return wrong;
}

/** Claims a fleet-wide chore for this process if it last ran more than `everyMs` ago; false if it is not due or another took it. */
export async function claimChore(q: Q, task: string, everyMs: number): Promise<boolean> {
  const { rows } = await q.query(
    `INSERT INTO mover.maintenance AS m (task, last_run) VALUES ($1, now())
     ON CONFLICT (task) DO UPDATE SET last_run = now() WHERE m.last_run < now() - $2 * interval '1 millisecond' RETURNING 1`,
    [task, everyMs],
  );
  return rows.length === 1;
}
