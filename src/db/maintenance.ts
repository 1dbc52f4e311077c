// Upkeep of the state tracker's own bookkeeping, run by the reconciler now
// and then, never in an org's path: the state mirror caught up with Chef's
// table after a hand edit (resyncStateMirror), the counters by state put
// right if they drifted (repairStateCounts), and the fleet-wide chore claim
// that lets one process do each (claimChore). The state changes themselves
// are in src/db/state-tracker.ts.
import { inTransaction, type Db, type DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;

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
