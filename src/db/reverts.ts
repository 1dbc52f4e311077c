// Reverts (legacy demigration), SQL operations only: which orgs a revert takes,
// the mark on an org a revert is working on (so a lost revert job can be put
// back), the revert itself, and what each org of a revert run came to.
import type { Db, DbClient } from '../stores/postgres.js';
import { deleteOwnedOrgObjects } from './org-objects.js';

type Q = Db | DbClient;
export const MIGRATED = 'phase_2_migration';
export const revertMark = (runId: string) => `revert:${runId}`;

export async function completedOrgs(q: Q, names: string[] | 'all'): Promise<{ org_name: string; org_id: string }[]> {
  const { rows } = await q.query(
    `SELECT org_name, org_id FROM org_migration_state WHERE migration_type = $1 AND state = 'completed' AND ($2::text[] IS NULL OR org_name = ANY($2)) ORDER BY org_id`,
    [MIGRATED, names === 'all' ? null : names],
  );
  return rows;
}

export async function isCompleted(q: Q, orgId: string): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM org_migration_state WHERE migration_type = $1 AND org_id = $2 AND state = 'completed'`, [MIGRATED, orgId]);
  return rows.length === 1;
}

/** Set before anything changes, so the reconciler can put the org back if the revert job is lost mid-way. */
export async function markReverting(q: Q, orgId: string, runId: string): Promise<void> {
  await q.query(`UPDATE mover.org_progress SET current_step = $3, updated_at = now() WHERE migration_type = $1 AND org_id = $2`, [MIGRATED, orgId, revertMark(runId)]);
}

export async function clearRevertMark(q: Q, orgId: string): Promise<void> {
  await q.query(`UPDATE mover.org_progress SET current_step = NULL, updated_at = now() WHERE migration_type = $1 AND org_id = $2 AND current_step LIKE 'revert:%'`, [MIGRATED, orgId]);
}

/**
 * Orgs marked by a revert: still completed (the revert had not committed) or
 * already ready (it committed but may not have brought the org up again).
 * The reconciler checks each one's job.
 */
export async function markedReverts(q: Q): Promise<{ org_name: string; org_id: string; current_step: string; state: 'completed' | 'ready' }[]> {
  const { rows } = await q.query(
    `SELECT p.org_name, p.org_id, p.current_step, s.state::text AS state FROM mover.org_progress p
     JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id
     WHERE p.migration_type = $1 AND p.current_step LIKE 'revert:%' AND s.state IN ('completed', 'ready')`,
    [MIGRATED],
  );
  return rows;
}

/** The org's state while the mark still says this revert; null when the mark has gone or changed. */
export async function markedState(q: Q, orgId: string, mark: string): Promise<'completed' | 'ready' | null> {
  const { rows } = await q.query(
    `SELECT s.state::text AS state FROM org_migration_state s JOIN mover.org_progress p ON p.migration_type = s.migration_type AND p.org_id = s.org_id
     WHERE s.migration_type = $1 AND s.org_id = $2 AND s.state IN ('completed', 'ready') AND p.current_step = $3`,
    [MIGRATED, orgId, mark],
  );
  return rows[0]?.state ?? null;
}

/**
 * completed → ready, the org's rows (mover wrote them) deleted, its run and
 * failure cleared; false if it moved on meanwhile. The revert mark stays until
 * the org is up again, so a revert lost after this commit is still found.
 */
export async function revertOrg(c: DbClient, orgId: string): Promise<boolean> {
  const moved = await c.query(
    `UPDATE org_migration_state SET state = 'ready', migration_start = NULL, migration_end = NULL, fail_location = NULL
     WHERE migration_type = $1 AND org_id = $2 AND state = 'completed'`,
    [MIGRATED, orgId],
  );
  if (moved.rowCount !== 1) return false;
  await deleteOwnedOrgObjects(c, MIGRATED, orgId);
  await c.query(`UPDATE mover.org_progress SET run_id = NULL, fail_detail = NULL, updated_at = now() WHERE migration_type = $1 AND org_id = $2`, [MIGRATED, orgId]);
  return true;
}

export type RevertOutcome = 'reverted' | 'refused' | 'failed';

export async function recordResult(
  q: Q,
  r: { runId: string; orgName: string; outcome: RevertOutcome; writtenBack?: number; differences?: unknown[]; detail?: string },
): Promise<void> {
  await q.query(
    `INSERT INTO mover.revert_results (run_id, org_name, outcome, written_back, differences, detail) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (run_id, org_name) DO UPDATE SET outcome = EXCLUDED.outcome, written_back = EXCLUDED.written_back, differences = EXCLUDED.differences, detail = EXCLUDED.detail, at = now()`,
    [r.runId, r.orgName, r.outcome, r.writtenBack ?? 0, JSON.stringify(r.differences ?? []), r.detail ?? null],
  );
}

export interface RevertResult {
  run_id: string;
  org_name: string;
  outcome: RevertOutcome;
  written_back: number;
  differences: unknown[];
  detail: string | null;
  at: Date;
}

/** The org's latest revert result, for GET /orgs/:name. */
export async function latestResult(q: Q, orgName: string): Promise<RevertResult | null> {
  const { rows } = await q.query(`SELECT run_id::text AS run_id, org_name, outcome, written_back, differences, detail, at FROM mover.revert_results WHERE org_name = $1 ORDER BY at DESC LIMIT 1`, [orgName]);
  return rows[0] ?? null;
}

/** Orgs of a revert run that were refused or failed, with why (for the run's status). */
export async function unrevertedInRun(q: Q, runId: string, limit = 100): Promise<{ org_name: string; outcome: RevertOutcome; detail: string | null; differences: number }[]> {
  const { rows } = await q.query(
    `SELECT org_name, outcome, detail, jsonb_array_length(differences)::int AS differences FROM mover.revert_results
     WHERE run_id = $1 AND outcome <> 'reverted' ORDER BY org_name LIMIT $2`,
    [runId, limit],
  );
  return rows;
}
