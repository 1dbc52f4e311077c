// The state machine: every change of an org's state, one conditional
// statement each (the legacy moser_state_tracker, docs/domain.md section 5)
// on Chef's own org_migration_state. The expected current state sits in the
// WHERE clause and the changed rows come back, so two workers can never both
// start one org and a stale job can never move an org that has moved on.
// Chef's table keeps only Chef's columns; what the fleet needs beside them
// (run, step, failure detail, in flight, lease, rows written) is in
// mover.org_progress, written by the same statements, and each statement
// that changes a state writes it to org_progress.state too, the mirror the
// reads at scale go by (migrations/008_org_state_mirror.sql). The reads are
// in src/db/org-states.ts; the mirror's upkeep in src/db/maintenance.ts.
//
// | from → to                      | by                                                                   |
// |--------------------------------|----------------------------------------------------------------------|
// | (none) → holding               | insertOrgs: capture (1.2), the prep pass (2.5)                         |
// | holding → ready                | readyHolding: steps 1.3, 3.2; moveOrgs: POST .../ready                 |
// | ready → holding                | moveOrgs: POST .../hold                                                |
// | ready → failed                 | failUnstarted: a migration's preflight refused the org                 |
// | ready → started                | the claim, mover.claim_org in src/db/functions.sql (leaseAndClaim)     |
// | completed → started            | the same claim, for a revert (its path starts at completed)            |
// | started → completed            | completeOrg: a migration's last step passed                            |
// | started → ready                | completeOrg: a revert's last step passed (its rows deleted with it)    |
// |                                | requeueOrg: a migration's lost job, restored, queued again             |
// | started → failed               | failOrg: a migration's step failed, the org restored first             |
// | started → completed            | failOrg: a revert's step failed or refused it, the org put back first  |
// |                                | requeueOrg: a revert's lost job, put back, queued again                |
// | failed → ready                 | retryInfrastructureFailures: the run's breaker closed                  |
// | failed → holding               | resetOrgs: POST .../reset, mover's rows deleted with it                |
// | completed → purge_started      | moveOrg, under the org's lease: phase 4 (src/jobs/phase_2_purge.ts)    |
// | purge_started → purge_successful or completed | moveOrg, under the org's lease: phase 4                 |
// | any → any                      | forceState: the legacy force_org_to_state, no guard, no HTTP route     |
//
// An org in flight is named by an OrgKey, which carries the fence its
// delivery holds it by: every statement that writes for it starts with the
// fence (HELD below) and is refused by Postgres itself, raising
// OwnershipLostError, when the lease or the claim is stale
// (docs/architecture.md, "Fencing"). The resting moves take names, and each
// is conditional on the state it moves from, in its own statement.
import { fenceRefusal, OwnershipLostError } from '../errors.js';
import { beforeWrite, type OrgWrite } from '../stores/pause-point.js';
import { inTransaction, retryThroughDbOutage, type Db, type DbClient } from '../stores/postgres.js';
import type { OrgState, OrgStateRow } from './org-states.js';

export { ORG_STATES, type OrgState } from './org-states.js';

type Q = Db | DbClient;

/** An org in flight, as every statement that writes for it names it: the org, and the fence its delivery holds it by. */
export interface FencedOrg {
  /** The migration type whose org rows move (a revert moves phase_2_migration's). */
  type: string;
  orgId: string;
  /** The run the org is in flight in. */
  runId: string;
  /** The org lease's token: the statement runs only for the lease's holder. */
  leaseToken: string;
  /** The claim's generation (org_progress.requeues): a delivery that claimed an older one no longer owns the org. */
  generation: number;
}

/**
 * The fence, as the first CTE of a statement for an org in flight ($1 type,
 * $2 org id, $3 run, $4 lease token, $5 generation): the org's progress row,
 * locked until the transaction ends, only while the lease is still that
 * token's and the org still in flight in that run at that generation. Every
 * part of the statement that writes requires it, so a stale fence writes
 * nothing (no row: OwnershipLostError). The lock is what keeps a lease take,
 * an upsert of the same row, from committing in between. Inline rather than
 * a function of its own: a PL/pgSQL call here cost 150 us a statement.
 */
const HELD = `held AS (SELECT 1 FROM mover.org_progress
  WHERE migration_type = $1 AND org_id = $2 AND run_id = $3::bigint AND lease_owner = $4 AND requeues = $5::int AND in_flight FOR UPDATE)`;
const held = (k: FencedOrg) => [k.type, k.orgId, k.runId, k.leaseToken, k.generation];

/**
 * A fenced statement, `write` for the org whose id is its second value: its
 * rows, or OwnershipLostError when Postgres refused it or it found the org
 * moved on (`none` says why).
 */
async function fenced<R extends Record<string, unknown>>(
  q: Q,
  write: OrgWrite,
  query: { name?: string; text: string; values: unknown[] },
  none?: string,
): Promise<R[]> {
  await beforeWrite(write, { orgId: String(query.values[1]) });
  let rows: R[];
  try {
    ({ rows } = await q.query(query));
  } catch (err) {
    throw fenceRefusal(err);
  }
  if (none !== undefined && !rows.length) throw new OwnershipLostError(none);
  return rows;
}

/** Where a kind's orgs start and end: the state its claim takes them from, and where they rest when done or failed. */
export interface OrgPath {
  from: 'ready' | 'completed';
  done: 'completed' | 'ready';
  failed: 'failed' | 'completed';
}
/** A migration's path: ready → started → completed, or failed. */
export const MIGRATION_PATH: OrgPath = { from: 'ready', done: 'completed', failed: 'failed' };

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

export type ClaimResult = { claimed: true } | { claimed: false; reason: 'run_not_working' | 'finished' | 'breaker_open' | 'at_capacity' | 'not_ready' };

type ClaimAnswer = { working: boolean; closed: boolean; room: boolean; finished: boolean; claimed: boolean };

/**
 * path.from → started, only while the run is working and fewer orgs of the
 * type are in flight fleet-wide than the run's concurrency: an org may be
 * dark only while in flight, so this is what bounds the orgs dark at once,
 * whatever BullMQ does with stalled or re-delivered jobs.
 *
 * mover.claim_org (src/db/functions.sql) locks the run row first, so claims
 * of one run are counted one at a time: the count, read after the lock is
 * granted, sees every claim committed before it; the lock is held only while
 * the server runs the call. A delivery claims through leaseAndClaim (below),
 * which calls the same function under the org's lease; this is the claim
 * alone (tests, tools).
 */
export function claimOrg(db: Db, key: Omit<FencedOrg, 'generation'>, firstStep = 'start', from: OrgPath['from'] = 'ready'): Promise<ClaimResult> {
  // Safe to send again after a lost connection: if the first one committed, the
  // org is no longer in `from` and this says 'not_ready'.
  return retryThroughDbOutage(db, 'claim', async () => {
    const rows = await fenced(db, 'hold', {
      name: 'claim-org',
      text: `SELECT mover.claim_org($1, $2, $3, $4, false, NULL, $5, $6) AS r`,
      values: [key.type, key.orgId, key.runId, firstStep, from, key.leaseToken],
    });
    return claimResult(rows[0].r as ClaimAnswer);
  });
}

const claimResult = (r: ClaimAnswer): ClaimResult =>
  r.claimed
    ? { claimed: true }
    : {
        claimed: false,
        reason: !r.working ? 'run_not_working' : r.finished ? 'finished' : !r.closed ? 'breaker_open' : !r.room ? 'at_capacity' : 'not_ready',
      };

/** A kind's preflight in Postgres, checked inside the claim (mover.claim_org knows each by name): 'foreign_rows' counts the org's containers and groups rows mover did not write. */
export type ClaimGuard = 'foreign_rows';

/** What a delivery asks of leaseAndClaim besides the concurrency gate: its preflight's verdicts. */
export interface ClaimAsk {
  firstStep: string;
  /** The state the kind's claim takes an org from. */
  from: OrgPath['from'];
  /** The kind's preflight refused the org outside Postgres (its routing, say): it is not claimed. */
  refused: boolean;
  /** The kind's preflight in Postgres: a non-zero count keeps the org from being claimed. */
  guard?: ClaimGuard;
}

/** An org as a delivery's start found it: what decides whether it claims, resumes or skips. */
export type OrgStanding = Pick<OrgStateRow, 'state' | 'run_id' | 'current_step' | 'requeues'>;

export type LeaseAndClaim = { leased: false } | { leased: true; epoch: number; org: OrgStanding | null; claim: ClaimResult; guardCount: number };

/**
 * A delivery's start in one round trip (mover.lease_and_claim,
 * src/db/functions.sql): takes the org's lease for `leaseToken` (as takeLease),
 * then, holding it, claims the org (as claimOrg) unless the preflight refused
 * it or its guard counted rows against it; answers the org as it stood before the
 * claim, read after the lease. Safe to send again after a lost connection: a
 * first attempt that committed shows as the org started by this run.
 */
export function leaseAndClaim(
  db: Db,
  key: Omit<FencedOrg, 'leaseToken' | 'generation'>,
  orgName: string,
  leaseToken: string,
  leaseMs: number,
  ask: ClaimAsk,
): Promise<LeaseAndClaim> {
  return retryThroughDbOutage(db, 'lease and claim', async () => {
    const { rows } = await db.query({
      name: 'lease-and-claim',
      text: `SELECT mover.lease_and_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS r`,
      values: [key.type, key.orgId, orgName, leaseToken, Math.round(leaseMs), key.runId, ask.firstStep, ask.refused, ask.guard ?? null, ask.from],
    });
    const r = rows[0].r as ClaimAnswer & { leased: boolean; epoch: number; org: OrgStanding | null; guard_count: number };
    if (!r.leased) return { leased: false };
    return { leased: true, epoch: Number(r.epoch), org: r.org, claim: claimResult(r), guardCount: r.guard_count };
  });
}

/** Records the step an in-flight org is in, so a resumed or reconciled job knows where it stood. Fenced. */
export async function setStep(q: Q, key: FencedOrg, step: string): Promise<void> {
  await fenced(
    q,
    'checkpoint',
    {
      name: 'set-step',
      // The fence in its own WHERE: one row, written only for the holder (the update locks it and checks again).
      text: `UPDATE mover.org_progress SET current_step = $6, updated_at = now()
       WHERE migration_type = $1 AND org_id = $2 AND run_id = $3::bigint AND lease_owner = $4 AND requeues = $5::int AND in_flight RETURNING 1`,
      values: [...held(key), step],
    },
    `it is no longer in flight in run ${key.runId}`,
  );
}

/**
 * started → done (completed for a migration, ready for a revert), for the
 * delivery holding it (fenced), and counted in the run by the same statement
 * (one round trip, and never counted twice); it gives the lease up too. Back
 * at ready, Chef's migration times and failure are cleared: the org is as
 * before it migrated.
 */
export async function completeOrg(q: Q, key: FencedOrg, darkMs: number | null = null, done: OrgPath['done'] = 'completed'): Promise<{ runMayBeDone: boolean }> {
  const rows = await fenced(
    q,
    'complete',
    {
      name: 'complete-org',
      text: `WITH ${HELD},
       moved AS (
         UPDATE org_migration_state SET state = $7::org_state,
           migration_start = CASE WHEN $7::text = 'ready' THEN NULL ELSE migration_start END,
           migration_end = CASE WHEN $7::text = 'ready' THEN NULL ELSE now() AT TIME ZONE 'utc' END, fail_location = NULL
         WHERE migration_type = $1 AND org_id = $2 AND state = 'started' AND EXISTS (SELECT 1 FROM held) RETURNING org_id),
       progress AS (
         UPDATE mover.org_progress SET in_flight = false, current_step = NULL, state = $7::text, updated_at = now(), dark_ms = $6,
           lease_owner = NULL, lease_until = NULL
         WHERE migration_type = $1 AND org_id IN (SELECT org_id FROM moved) RETURNING run_id)
     UPDATE mover.migration_runs r SET orgs_finished = orgs_finished + 1, dark_hist = mover.dark_hist_add(r.dark_hist, $6::int), dark_max_ms = GREATEST(r.dark_max_ms, $6::int)
     FROM progress WHERE r.id = progress.run_id
     RETURNING r.orgs_finished + r.orgs_skipped >= r.enqueued OR r.state <> 'working' AS run_may_be_done`,
      values: [...held(key), darkMs, done],
    },
    `it was no longer started in run ${key.runId} when it completed`,
  );
  return { runMayBeDone: rows[0].run_may_be_done as boolean };
}

/** Why an org in flight ended short: its data, the stores, or a kind's refusal (a revert that would lose writes). */
export type FailureCause = 'data' | 'infrastructure' | 'refused';

/**
 * started → failed (a migration: failed at its step) or started → completed
 * (a revert, put back where it was), for the run that started it, counted in
 * the run as finished and failed, by one statement. A failure is kept in the
 * org's failure history; a refusal is not a failure of anything, and is not.
 * An org that goes back to the state its claim took it from is marked done in
 * its run (mover.run_counted), so the claim never takes it again there.
 */
export async function failOrg(
  q: Q,
  key: FencedOrg,
  f: { step: string; detail: string; cause?: FailureCause; darkMs?: number | null; to?: OrgPath['failed'] },
): Promise<void> {
  await fenced(
    q,
    'fail',
    {
      text: `WITH ${HELD},
       moved AS (
         UPDATE org_migration_state SET state = $10::org_state,
           fail_location = CASE WHEN $10::text = 'failed' THEN left($6, 50) END,
           migration_end = CASE WHEN $10::text = 'failed' THEN now() AT TIME ZONE 'utc' ELSE migration_end END
         WHERE migration_type = $1 AND org_id = $2 AND state = 'started' AND EXISTS (SELECT 1 FROM held) RETURNING org_id, org_name),
       progress AS (
         UPDATE mover.org_progress SET fail_detail = $7, fail_kind = NULLIF($8, 'refused'), in_flight = false, current_step = NULL, state = $10::text, updated_at = now(), dark_ms = $9
         WHERE migration_type = $1 AND org_id IN (SELECT org_id FROM moved) RETURNING run_id),
       history AS (
         INSERT INTO mover.org_failures (migration_type, org_id, org_name, run_id, step, kind, detail)
         SELECT $1, org_id, org_name, $3, left($6, 50), $8, $7 FROM moved WHERE $8 <> 'refused'),
       done AS (
         INSERT INTO mover.run_counted (run_id, item) SELECT $3, 'result:' || org_id FROM moved WHERE $10::text <> 'failed' ON CONFLICT DO NOTHING)
     UPDATE mover.migration_runs r SET orgs_finished = orgs_finished + 1, orgs_failed = orgs_failed + 1,
       dark_hist = mover.dark_hist_add(r.dark_hist, $9::int), dark_max_ms = GREATEST(r.dark_max_ms, $9::int)
     FROM progress WHERE r.id = progress.run_id RETURNING 1`,
      values: [...held(key), f.step, f.detail, f.cause ?? 'data', f.darkMs ?? null, f.to ?? 'failed'],
    },
    `it was no longer started in run ${key.runId} when it failed`,
  );
}

/** How many times an org goes back to its start in one run (a lost job, a closing breaker) before it is failed instead. */
export const MAX_REQUEUES = 3;

/**
 * started → path.from in the same run (ready for a migration, completed for
 * a revert), for an org whose job was lost and that has just been restored:
 * it will be claimed again by a new job, at the next generation. Fenced; not
 * counted as finished; false if it was requeued MAX_REQUEUES times already.
 */
export async function requeueOrg(q: Q, key: FencedOrg, to: OrgPath['from'] = 'ready'): Promise<boolean> {
  const rows = await fenced(
    q,
    'requeue',
    {
      text: `WITH ${HELD},
       moved AS (
         UPDATE org_migration_state SET state = $7::org_state, migration_start = CASE WHEN $7::text = 'ready' THEN NULL ELSE migration_start END
         WHERE migration_type = $1 AND org_id = $2 AND state = 'started' AND EXISTS (SELECT 1 FROM held)
           AND EXISTS (SELECT 1 FROM mover.org_progress WHERE migration_type = $1 AND org_id = $2 AND requeues < $6) RETURNING org_id),
       progress AS (
         UPDATE mover.org_progress SET in_flight = false, current_step = NULL, requeues = requeues + 1, state = $7::text, updated_at = now()
         WHERE migration_type = $1 AND org_id IN (SELECT org_id FROM moved) RETURNING 1)
     SELECT EXISTS (SELECT 1 FROM progress) AS requeued FROM held`,
      values: [...held(key), MAX_REQUEUES, to],
    },
    `it is no longer in flight in run ${key.runId}`,
  );
  return rows[0].requeued as boolean;
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
 * Holds the org for a restore in the caller's transaction: fenced (its
 * progress row locked for this delivery, or OwnershipLostError), and its
 * state row locked, still started. An org that completed or failed meanwhile,
 * or that another delivery took over, must not be touched.
 */
export async function holdStartedOrg(c: DbClient, key: FencedOrg): Promise<void> {
  await fenced(
    c,
    'hold',
    {
      text: `WITH ${HELD}
       SELECT 1 FROM org_migration_state WHERE migration_type = $1 AND org_id = $2 AND state = 'started' AND EXISTS (SELECT 1 FROM held) FOR UPDATE`,
      values: held(key),
    },
    `it is no longer started in run ${key.runId}`,
  );
}

/**
 * Holds the org's lease for work on an org at rest, in the caller's
 * transaction (mover.hold_lease: its progress row locked; OwnershipLostError
 * if the lease is another's now).
 */
export async function holdLease(c: DbClient, type: string, orgId: string, leaseToken: string): Promise<void> {
  await fenced(c, 'hold', { text: `SELECT mover.hold_lease($1, $2, $3)`, values: [type, orgId, leaseToken] });
}

/**
 * ready → failed for an org that failed its preflight, never started (so
 * nothing of it changed), counted in the run; only while the run works, and
 * only for the holder of the org's lease (else OwnershipLostError).
 */
export async function failUnstarted(q: Q, key: Omit<FencedOrg, 'generation'>, location: string, detail: string): Promise<boolean> {
  const rows = await fenced(q, 'fail_unstarted', {
    text: `WITH leased AS (SELECT mover.hold_lease($1, $2, $6) AS ok),
     moved AS (
       UPDATE org_migration_state SET state = 'failed', fail_location = left($4, 50), migration_start = now() AT TIME ZONE 'utc', migration_end = now() AT TIME ZONE 'utc'
       WHERE migration_type = $1 AND org_id = $2 AND state = 'ready' AND EXISTS (SELECT 1 FROM leased)
         AND EXISTS (SELECT 1 FROM mover.migration_runs WHERE id = $3 AND state = 'working')
       RETURNING org_name),
     progress AS (
       INSERT INTO mover.org_progress (migration_type, org_id, org_name, run_id, fail_detail, fail_kind, state) SELECT $1, $2, org_name, $3, $5, 'data', 'failed' FROM moved
       ON CONFLICT (migration_type, org_id) DO UPDATE SET org_name = EXCLUDED.org_name, run_id = $3, fail_detail = $5, fail_kind = 'data', current_step = NULL, state = 'failed', updated_at = now()),
     history AS (
       INSERT INTO mover.org_failures (migration_type, org_id, org_name, run_id, step, kind, detail) SELECT $1, $2, org_name, $3, left($4, 50), 'data', $5 FROM moved)
     UPDATE mover.migration_runs SET orgs_finished = orgs_finished + 1, orgs_failed = orgs_failed + 1 FROM moved WHERE id = $3 RETURNING 1`,
    values: [key.type, key.orgId, key.runId, location, detail, key.leaseToken],
  });
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

/**
 * One org at rest, by id, from one state to another, for the holder of its
 * lease (a purge): false if it was not in `from` (it moved on meanwhile),
 * OwnershipLostError if the lease is another's now (mover.hold_lease).
 */
export async function moveOrg(q: Q, type: string, orgId: string, leaseToken: string, from: OrgState, to: OrgState): Promise<boolean> {
  const rows = await fenced(q, 'purge_move', {
    text: `WITH leased AS (SELECT mover.hold_lease($1, $2, $5) AS ok),
       moved AS (
         UPDATE org_migration_state SET state = $4 WHERE migration_type = $1 AND org_id = $2 AND state = $3 AND EXISTS (SELECT 1 FROM leased)
         RETURNING migration_type, org_id, org_name, state),
     ${MIRROR}
     SELECT 1 FROM moved`,
    values: [type, orgId, from, to, leaseToken],
  });
  return rows.length === 1;
}

/** Whether the org is still in `state` and its lease still `leaseToken`'s (OwnershipLostError if not the lease), checked by one statement: the last word before a write to another store. */
export async function stillHeldIn(q: Q, type: string, orgId: string, leaseToken: string, state: OrgState): Promise<boolean> {
  const rows = await fenced(q, 'hold', {
    text: `WITH leased AS (SELECT mover.hold_lease($1, $2, $3) AS ok)
     SELECT 1 FROM org_migration_state WHERE migration_type = $1 AND org_id = $2 AND state = $4 AND EXISTS (SELECT 1 FROM leased)`,
    values: [type, orgId, leaseToken, state],
  });
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

/**
 * Marks the orgs a run has just taken (queued a job for) with its run id, so
 * an org whose job Redis lost before any worker claimed it can still be found
 * and queued again. Orgs in flight in another run are left alone.
 */
export async function markInRun(q: Q, type: string, runId: string, orgs: { name: string; guid: string }[]): Promise<void> {
  if (!orgs.length) return;
  await q.query(
    `INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, run_id, state)
     SELECT $1, g, n, $2, 'ready' FROM unnest($3::text[], $4::text[]) AS t(g, n)
     ON CONFLICT (migration_type, org_id) DO UPDATE SET run_id = $2, requeues = 0, updated_at = now() WHERE NOT p.in_flight`,
    [type, runId, orgs.map((o) => o.guid), orgs.map((o) => o.name)],
  );
}
