// A run's circuit breakers (docs/architecture.md, "Riding through store
// faults"), SQL only. Every change is one conditional statement, so any
// process may try it and only the first one that should wins.
import type { Db, DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;
export type BreakerState = 'closed' | 'open' | 'half_open';
export type BreakerCause = 'infrastructure' | 'data';

/**
 * closed → open (or open again, from half-open) while the run works. It
 * counts a trip only from closed, and keeps the first reason of a trip.
 * fatal_stop says, as in the legacy status, that an error stopped the run.
 * A data breaker halts the run in the same statement (working → halting):
 * nothing closes it but an operator.
 */
export async function openBreaker(q: Q, runId: string, cause: BreakerCause, reason: string): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE mover.migration_runs SET breaker = 'open', breaker_kind = $2, breaker_since = now(),
       state = CASE WHEN $2 = 'data' AND state = 'working' THEN 'halting' ELSE state END,
       breaker_reason = CASE WHEN breaker = 'closed' THEN $3 ELSE breaker_reason END,
       breaker_trips = breaker_trips + CASE WHEN breaker = 'closed' THEN 1 ELSE 0 END,
       fatal_stop = true, stop_reason = COALESCE(stop_reason, $3)
     WHERE id = $1 AND state IN ('working', 'halting') AND (breaker <> 'open' OR breaker_kind <> $2)`,
    [runId, cause, reason],
  );
  return rowCount === 1;
}

/** open → half_open once the cool-down has passed since it opened (the caller has just seen every store answer). */
export async function halfOpenBreaker(q: Q, runId: string, coolDownMs: number): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE mover.migration_runs SET breaker = 'half_open', breaker_since = now()
     WHERE id = $1 AND state = 'working' AND breaker = 'open' AND breaker_kind = 'infrastructure' AND breaker_since <= now() - make_interval(secs => $2::float8 / 1000)`,
    [runId, coolDownMs],
  );
  return rowCount === 1;
}

/** half_open → closed once the stores have answered for `stableMs`: the run goes on as before the fault. */
export async function closeBreaker(q: Q, runId: string, stableMs: number): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE mover.migration_runs SET breaker = 'closed', breaker_since = now(), fatal_stop = false, stop_reason = NULL
     WHERE id = $1 AND state = 'working' AND breaker = 'half_open' AND breaker_since <= now() - make_interval(secs => $2::float8 / 1000)`,
    [runId, stableMs],
  );
  return rowCount === 1;
}

/** Of the run's last `window` finished orgs (newest first), how many failed on their data. */
export async function recentDataFailures(q: Q, runId: string, window: number): Promise<{ finished: number; failed: number }> {
  const { rows } = await q.query(
    `SELECT count(*)::int AS finished, count(*) FILTER (WHERE fail_kind = 'data')::int AS failed FROM (
       SELECT p.fail_kind FROM mover.org_progress p
       JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id AND s.state IN ('completed', 'failed')
       WHERE p.run_id = $1 AND NOT p.in_flight
       ORDER BY p.updated_at DESC LIMIT $2) last`,
    [runId, window],
  );
  return rows[0];
}
