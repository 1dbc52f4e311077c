// Migration runs (legacy mover_manager's state), one row per start.
import type { Db, DbClient } from '../stores/postgres.js';
import type { BreakerState } from './breakers.js';

type Q = Db | DbClient;

export interface RunRow {
  id: string;
  migration_type: string;
  state: 'working' | 'halting' | 'ready';
  requested: number | null;
  enqueued: number;
  concurrency: number;
  orgs_finished: number;
  orgs_failed: number;
  orgs_skipped: number;
  fatal_stop: boolean;
  stop_reason: string | null;
  params: Record<string, unknown>;
  breaker: BreakerState;
  breaker_kind: 'infrastructure' | 'data' | null;
  breaker_reason: string | null;
  breaker_since: Date | null;
  breaker_trips: number;
  /** Its starter is still queueing its jobs, page by page (migrations/010): it cannot end yet. */
  enqueueing: boolean;
  enqueue_beat: Date | null;
  /** Its finished orgs' dark times, in 100 ms buckets (migrations/013_dark_time.sql), and the longest. */
  dark_hist: number[];
  dark_max_ms: number | null;
  started_at: Date;
  finished_at: Date | null;
  /** Where the live-service guard holds its starts below `concurrency` (src/runs/couchdb-guard.ts); null: not held back. */
  effective_concurrency: number | null;
  guard_p99_ms: number | null;
  guard_source: string | null;
  guard_reason: string | null;
  guard_at: Date | null;
}

/** Creates the run; null when one of that type is already active (the partial unique index). */
export async function createRun(
  q: Q,
  type: string,
  requested: number | null,
  enqueued: number,
  concurrency: number,
  params: Record<string, unknown> = {},
): Promise<RunRow | null> {
  const { rows } = await q.query(
    `INSERT INTO mover.migration_runs (migration_type, state, requested, enqueued, concurrency, params, enqueueing, enqueue_beat)
     VALUES ($1, 'working', $2, $3, $4, $5, true, now()) ON CONFLICT DO NOTHING RETURNING *`,
    [type, requested, enqueued, concurrency, JSON.stringify(params)],
  );
  return rows[0] ? normalize(rows[0]) : null;
}

export async function latestRun(q: Q, type: string): Promise<RunRow | null> {
  const { rows } = await q.query(`SELECT * FROM mover.migration_runs WHERE migration_type = $1 ORDER BY id DESC LIMIT 1`, [type]);
  return rows[0] ? normalize(rows[0]) : null;
}

/** A page of the type's runs, newest first, older than run `before` when given. */
export async function listRuns(q: Q, type: string, limit: number, before: string | null): Promise<RunRow[]> {
  const { rows } = await q.query(`SELECT * FROM mover.migration_runs WHERE migration_type = $1 AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $2`, [
    type,
    limit,
    before,
  ]);
  return rows.map(normalize);
}

export async function activeRuns(q: Q): Promise<RunRow[]> {
  const { rows } = await q.query(`SELECT * FROM mover.migration_runs WHERE state <> 'ready' ORDER BY id`);
  return rows.map(normalize);
}

/** Runs still going, and those that ended in the last two minutes (the runbook page's series takes their last counters). */
export async function recentRuns(q: Q): Promise<RunRow[]> {
  const { rows } = await q.query(`SELECT * FROM mover.migration_runs WHERE state <> 'ready' OR finished_at > now() - interval '2 minutes' ORDER BY id`);
  return rows.map(normalize);
}

export async function getRun(q: Q, id: string): Promise<RunRow | null> {
  const { rows } = await q.query(`SELECT * FROM mover.migration_runs WHERE id = $1`, [id]);
  return rows[0] ? normalize(rows[0]) : null;
}

/** working → halting. A fatal stop also records why; a second stop keeps the first reason. */
export async function haltRun(q: Q, id: string, reason: string, fatal: boolean): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE mover.migration_runs SET state = 'halting', fatal_stop = fatal_stop OR $3, stop_reason = COALESCE(stop_reason, $2)
     WHERE id = $1 AND state = 'working'`,
    [id, reason, fatal],
  );
  return rowCount === 1;
}

/** A halted run with only a fatal flag to add (a second infra error while halting). */
export async function markFatal(q: Q, id: string, reason: string): Promise<void> {
  await q.query(`UPDATE mover.migration_runs SET fatal_stop = true, stop_reason = COALESCE(stop_reason, $2) WHERE id = $1`, [id, reason]);
}

export async function setRunConcurrency(q: Q, id: string, concurrency: number): Promise<void> {
  // The guard never holds a run above what the operator set.
  await q.query(`UPDATE mover.migration_runs SET concurrency = $2, effective_concurrency = LEAST(effective_concurrency, $2) WHERE id = $1`, [id, concurrency]);
}

/** The run's warning about CouchDB's open-database limit (src/runs/couchdb-open-dbs.ts), kept in its params; null clears it. */
export async function setOpenDbsWarning(q: Q, id: string, warning: string | null): Promise<void> {
  await q.query(
    `UPDATE mover.migration_runs SET params = CASE WHEN $2::text IS NULL THEN params - 'couchdb_open_dbs' ELSE params || jsonb_build_object('couchdb_open_dbs', $2::text) END WHERE id = $1`,
    [id, warning],
  );
}

/**
 * Counts an item of the run (an org skipped, a prep batch's orgs finished or
 * skipped) once: the same item counted again (a job delivered twice, a
 * statement sent again after its answer was lost) adds nothing. False if it
 * was counted before.
 */
export async function countOnce(q: Q, id: string, item: string, add: { finished?: number; failed?: number; skipped?: number }): Promise<boolean> {
  const { rows } = await q.query(
    `WITH first AS (INSERT INTO mover.run_counted (run_id, item) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1)
     UPDATE mover.migration_runs SET orgs_finished = orgs_finished + $3, orgs_failed = orgs_failed + $4, orgs_skipped = orgs_skipped + $5
     WHERE id = $1 AND EXISTS (SELECT 1 FROM first) RETURNING 1`,
    [id, item, add.finished ?? 0, add.failed ?? 0, add.skipped ?? 0],
  );
  return rows.length === 1;
}

/**
 * Ends the run once nothing is left: every job accounted for while working
 * (and its breaker closed: an open one may yet put orgs back into the run),
 * or no org still started while halting. Conditional, so any process may try.
 */
export async function finishRunIfDone(q: Q, id: string): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE mover.migration_runs r SET state = 'ready', finished_at = now()
     WHERE r.id = $1 AND (
       (r.state = 'working' AND r.breaker = 'closed' AND NOT r.enqueueing AND r.orgs_finished + r.orgs_skipped >= r.enqueued)
       OR (r.state = 'halting' AND NOT r.enqueueing AND NOT EXISTS (
             SELECT 1 FROM mover.org_progress p WHERE p.run_id = r.id AND p.in_flight)))`,
    [id],
  );
  return rowCount === 1;
}

/** Counts a page of orgs as queued, before their jobs are added (so the run can never have finished more than it counts). */
export async function addEnqueued(q: Q, id: string, n: number): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE mover.migration_runs SET enqueued = enqueued + $2, enqueue_beat = now() WHERE id = $1 AND state = 'working' AND enqueueing`,
    [id, n],
  );
  return rowCount === 1;
}

/** The starter is still queueing this run (it rode out a slow page). */
export async function beatEnqueueing(q: Q, id: string): Promise<void> {
  await q.query(`UPDATE mover.migration_runs SET enqueue_beat = now() WHERE id = $1 AND enqueueing`, [id]);
}

/**
 * A run whose starter has queued nothing for `ms` (it died part-way: an api
 * restart) stops queueing and halts, its reason saying how far it got, so it
 * never passes for done; null if it is not such a run.
 */
export async function haltStaleEnqueueing(q: Q, id: string, ms: number): Promise<{ enqueued: number } | null> {
  const { rows } = await q.query(
    `UPDATE mover.migration_runs SET enqueueing = false,
       state = CASE WHEN state = 'working' THEN 'halting' ELSE state END, fatal_stop = fatal_stop OR state = 'working',
       stop_reason = COALESCE(stop_reason, 'its starter stopped after queueing ' || enqueued || ' orgs; the rest were not queued')
     WHERE id = $1 AND enqueueing AND enqueue_beat < now() - $2 * interval '1 millisecond' RETURNING enqueued`,
    [id, ms],
  );
  return rows[0] ?? null;
}

/** Every page is queued (or its starter is gone): the run may end once its queued orgs are finished. */
export async function doneEnqueueing(q: Q, id: string): Promise<boolean> {
  const { rowCount } = await q.query(`UPDATE mover.migration_runs SET enqueueing = false WHERE id = $1 AND enqueueing`, [id]);
  return rowCount === 1;
}

/** Ends a run whatever its counters say (the reconciler, when its jobs are all gone). */
export async function endRun(q: Q, id: string): Promise<void> {
  await q.query(`UPDATE mover.migration_runs SET state = 'ready', finished_at = now() WHERE id = $1 AND state <> 'ready'`, [id]);
}

/** How many orgs of the run are in flight (claimed, not yet completed or failed). */
export async function inFlightCount(q: Q, id: string): Promise<number> {
  const { rows } = await q.query(`SELECT count(*)::int AS n FROM mover.org_progress WHERE run_id = $1 AND in_flight`, [id]);
  return rows[0].n;
}

/** The names of the run's orgs in flight: the only ones that can be dark. */
export async function inFlightOrgs(q: Q, id: string): Promise<string[]> {
  const { rows } = await q.query(`SELECT org_name FROM mover.org_progress WHERE run_id = $1 AND in_flight`, [id]);
  return rows.map((r) => r.org_name);
}

function normalize(r: Record<string, unknown>): RunRow {
  return { ...(r as unknown as RunRow), id: String(r.id) };
}

/** What the run may have in flight now: the guard's hold where it holds one, never above what the operator set (as mover.claim_org's gate reads it). */
export const effectiveConcurrency = (run: Pick<RunRow, 'concurrency' | 'effective_concurrency'>): number =>
  Math.min(run.concurrency, run.effective_concurrency ?? run.concurrency);

/** What the live-service guard decided for a working run (src/runs/couchdb-guard.ts): null effective concurrency lets the run go at its own. */
export async function setRunGuard(
  q: Q,
  id: string,
  g: { effective: number | null; p99Ms: number | null; source: string | null; reason: string | null },
): Promise<void> {
  await q.query(
    `UPDATE mover.migration_runs SET effective_concurrency = CASE WHEN $2::int IS NULL THEN NULL ELSE LEAST($2::int, concurrency) END, guard_p99_ms = $3, guard_source = $4, guard_reason = $5, guard_at = now()
     WHERE id = $1 AND state = 'working'`,
    [id, g.effective, g.p99Ms, g.source, g.reason],
  );
}
