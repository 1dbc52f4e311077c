// Reads of the state tracker (Chef's org_migration_state with mover's
// org_progress beside it): one org, pages of orgs, the orgs in a state. The
// writes are all in src/db/state-tracker.ts.
import type { Db, DbClient } from '../stores/postgres.js';
type Q = Db | DbClient;

/** Chef's org_state enum, in the order of an org's life. */
export const ORG_STATES = ['holding', 'ready', 'started', 'completed', 'failed', 'purge_started', 'purge_successful'] as const;
export type OrgState = (typeof ORG_STATES)[number];
export const COLUMNS = `s.org_name, s.org_id, s.migration_type, s.state, s.fail_location, p.fail_detail, s.migration_start, s.migration_end, p.run_id::text AS run_id, p.current_step, COALESCE(p.requeues, 0) AS requeues, p.dark_ms`;
export const JOINED = `org_migration_state s LEFT JOIN mover.org_progress p ON p.migration_type = s.migration_type AND p.org_id = s.org_id`;

export interface OrgStateRow {
  org_name: string;
  org_id: string;
  migration_type: string;
  state: OrgState;
  fail_location: string | null;
  fail_detail: string | null;
  migration_start: Date | null;
  migration_end: Date | null;
  run_id: string | null;
  current_step: string | null;
  /** Times the org went back to ready in its run (the claim's generation: a delivery holding an older one no longer owns the org). */
  requeues: number;
  /** How long it was dark (503) when it last finished, in ms (null: never dark, or not measured). */
  dark_ms: number | null;
}

/** When the org's current claim took it (org_progress.claimed_at; before that column, Chef's migration_start, stored as UTC), in ms since the epoch; null if it never started. */
export async function startedAtMs(q: Q, type: string, orgId: string): Promise<number | null> {
  const { rows } = await q.query(
    `SELECT (extract(epoch FROM COALESCE(p.claimed_at, s.migration_start AT TIME ZONE 'utc')) * 1000)::float8 AS ms FROM ${JOINED} WHERE s.migration_type = $1 AND s.org_id = $2`,
    [type, orgId],
  );
  return rows[0]?.ms ?? null;
}

/** Legacy next_ready_org, for many: the ready orgs ordered by org_id. */
/** The named orgs' states for the type (a name not captured for it is absent). */
export async function statesOf(q: Q, type: string, names: string[]): Promise<Map<string, string>> {
  if (!names.length) return new Map();
  const { rows } = await q.query(`SELECT org_name, state::text FROM org_migration_state WHERE migration_type = $1 AND org_name = ANY($2)`, [type, names]);
  return new Map(rows.map((r) => [r.org_name as string, r.state as string]));
}

/** Ready orgs of the type in org_id order after `after`; only the `named` ones when given (a retry). */
export async function readyOrgs(
  q: Q,
  type: string,
  limit: number | null,
  after: string | null = null,
  named: string[] | null = null,
): Promise<{ name: string; guid: string }[]> {
  const { rows } = await q.query(
    `SELECT org_name AS name, org_id AS guid FROM org_migration_state
     WHERE migration_type = $1 AND state = 'ready' AND ($3::text IS NULL OR org_id > $3) AND ($4::text[] IS NULL OR org_name = ANY($4))
     ORDER BY org_id LIMIT $2`,
    [type, limit, after, named],
  );
  return rows;
}

/** The next orgs for phase 4 (completed, or purge_started by an earlier pass), in org_id order after `cursor`. */
export async function purgeCandidates(q: Q, type: string, cursor: string, limit: number): Promise<{ org_name: string; org_id: string; state: OrgState }[]> {
  const { rows } = await q.query(
    `SELECT org_name, org_id, state FROM org_migration_state
     WHERE migration_type = $1 AND state IN ('completed', 'purge_started') AND org_id > $2 ORDER BY org_id LIMIT $3`,
    [type, cursor, limit],
  );
  return rows;
}

export async function getOrgStates(q: Q, orgName: string): Promise<OrgStateRow[]> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM ${JOINED} WHERE s.org_name = $1 ORDER BY s.migration_type`, [orgName]);
  return rows;
}

export async function getOrgState(q: Q, type: string, orgName: string): Promise<OrgStateRow | null> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM ${JOINED} WHERE s.migration_type = $1 AND s.org_name = $2`, [type, orgName]);
  return rows[0] ?? null;
}

export async function getOrgStateById(q: Q, type: string, orgId: string): Promise<OrgStateRow | null> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM ${JOINED} WHERE s.migration_type = $1 AND s.org_id = $2`, [type, orgId]);
  return rows[0] ?? null;
}

/**
 * A page ordered by org_name; the cursor is the last name of the previous
 * page. Filtered by state, it walks the state mirror's index
 * (migrations/008_org_state_mirror.sql) and keeps only orgs whose state in
 * Chef's table agrees, so a mirror not yet caught up with a hand edit leaves
 * an org out of a page rather than showing it in a state it is not in.
 */
export async function listOrgs(q: Q, type: string, opts: { state?: OrgState; limit: number; cursor?: string }): Promise<OrgStateRow[]> {
  if (!opts.state) {
    const { rows } = await q.query(
      `SELECT ${COLUMNS} FROM ${JOINED} WHERE s.migration_type = $1 AND ($2::text IS NULL OR s.org_name > $2) ORDER BY s.org_name LIMIT $3`,
      [type, opts.cursor ?? null, opts.limit],
    );
    return rows;
  }
  const { rows } = await q.query(
    `SELECT ${COLUMNS} FROM mover.org_progress p JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id
     WHERE p.migration_type = $1 AND p.state = $2 AND s.state = $2::org_state AND ($3::text IS NULL OR p.org_name > $3)
     ORDER BY p.org_name LIMIT $4`,
    [type, opts.state, opts.cursor ?? null, opts.limit],
  );
  return rows;
}

/**
 * Orgs of `type` the fleet started in runs of `runType` (a revert's runs
 * start phase_2_migration's orgs) that are still in 'started' and whose lease
 * nobody holds (none, or lapsed): what the reconciler looks at. An org whose
 * lease is held has a delivery working on it, which the reconciler would
 * stand aside for anyway (it takes the lease first); left out here, a run of
 * 300 orgs in flight costs each process's pass one statement instead of a
 * job-state look-up in the queue for each.
 */
export async function unheldStartedOrgs(q: Q, type: string, runType: string = type): Promise<OrgStateRow[]> {
  const { rows } = await q.query(
    `SELECT ${COLUMNS} FROM mover.org_progress p JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id
     LEFT JOIN mover.migration_runs r ON r.id = p.run_id
     WHERE p.migration_type = $1 AND p.in_flight AND s.state = 'started' AND (r.migration_type = $2 OR (r.id IS NULL AND $1 = $2))
       AND (p.lease_owner IS NULL OR p.lease_until < now())`,
    [type, runType],
  );
  return rows;
}

/** A migration type's orgs in any of these states. */
export async function orgsIn(q: Q, type: string, states: OrgState[]): Promise<{ name: string; guid: string }[]> {
  const { rows } = await q.query(
    `SELECT org_name AS name, org_id AS guid FROM org_migration_state WHERE migration_type = $1 AND state = ANY($2::org_state[])`,
    [type, states],
  );
  return rows;
}

/** The orgs in each state, from the counters the state-changing statements keep (migrations/008_org_state_mirror.sql): no scan of the orgs. */
export async function countByState(q: Q, type?: string): Promise<{ migration_type: string; state: OrgState; count: number }[]> {
  const { rows } = await q.query(
    `SELECT migration_type, state, sum(n)::int AS count FROM mover.org_state_counts WHERE ($1::text IS NULL OR migration_type = $1)
     GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2`,
    [type ?? null],
  );
  return rows;
}

/**
 * Orgs put back to the start of their path (`state`: ready, or completed for
 * a revert) in a working run of `runType` (a lost job, a closing breaker),
 * and not done in it: each must have a job waiting for it; the reconciler
 * queues one where it has not.
 */
export async function requeuedInWorkingRuns(
  q: Q,
  type: string,
  runType: string = type,
  state: OrgState = 'ready',
): Promise<{ org_name: string; org_id: string; run_id: string }[]> {
  const { rows } = await q.query(
    `SELECT s.org_name, s.org_id, p.run_id::text AS run_id FROM mover.org_progress p
     JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id
     JOIN mover.migration_runs r ON r.id = p.run_id
     WHERE p.migration_type = $1 AND p.requeues > 0 AND s.state = $3::org_state AND r.state = 'working' AND r.migration_type = $2
       AND NOT EXISTS (SELECT 1 FROM mover.run_counted c WHERE c.run_id = p.run_id AND c.item = 'result:' || p.org_id)`,
    [type, runType, state],
  );
  return rows;
}

/** The org's failures, newest first (mover.org_failures keeps them after the org is retried). */
export async function orgFailures(
  q: Q,
  orgName: string,
  limit = 20,
): Promise<{ migration_type: string; run_id: string | null; step: string; kind: string; detail: string | null; at: Date }[]> {
  const { rows } = await q.query(
    `SELECT migration_type, run_id::text AS run_id, step, kind, detail, at FROM mover.org_failures WHERE org_name = $1 ORDER BY at DESC, id DESC LIMIT $2`,
    [orgName, limit],
  );
  return rows;
}

/** Orgs a run took that are still ready (not claimed yet): when its queue is empty, their jobs were lost. */
export async function readyInRun(q: Q, type: string, runId: string, limit = 10_000): Promise<{ org_name: string; org_id: string }[]> {
  const { rows } = await q.query(
    `SELECT s.org_name, s.org_id FROM mover.org_progress p
     JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id
     WHERE p.migration_type = $1 AND p.run_id = $2 AND s.state = 'ready' AND NOT p.in_flight ORDER BY s.org_id LIMIT $3`,
    [type, runId, limit],
  );
  return rows;
}

export interface FailedOrg {
  org_name: string;
  org_id: string;
  step: string | null;
  kind: 'data' | 'infrastructure';
  reason: string | null;
  failed_at: string;
}

/** A page of a run's failed orgs (still failed), by name after `after`: what failed, where, why and when. */
export async function failedOrgsOfRun(q: Q, runId: string, limit: number, after: string | null): Promise<FailedOrg[]> {
  const { rows } = await q.query(
    `SELECT s.org_name, s.org_id, s.fail_location AS step, p.fail_kind AS kind, p.fail_detail AS reason, p.updated_at AS failed_at
     FROM mover.org_progress p JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id
     WHERE p.run_id = $1 AND p.fail_kind IS NOT NULL AND s.state = 'failed' AND ($3::text IS NULL OR s.org_name > $3)
     ORDER BY s.org_name LIMIT $2`,
    [runId, limit, after],
  );
  return rows.map((r) => ({ ...r, failed_at: new Date(r.failed_at).toISOString() }));
}

/** A run's failed orgs by the step they failed at: only its rows with a failure kind (org_progress_run_failed), not the whole run. */
export async function failuresByStep(q: Q, runId: string): Promise<Record<string, number>> {
  const { rows } = await q.query(
    `SELECT s.fail_location AS step, count(*)::int AS n FROM mover.org_progress p
     JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id
     WHERE p.run_id = $1 AND p.fail_kind IS NOT NULL AND s.state = 'failed' GROUP BY 1 ORDER BY 2 DESC`,
    [runId],
  );
  return Object.fromEntries(rows.map((r) => [r.step ?? 'unknown', r.n]));
}
