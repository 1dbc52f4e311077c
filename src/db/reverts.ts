// Reverts (legacy demigration), SQL reads and records only: which orgs a
// revert takes, the orgs a revert marked (so a lost revert job can be put
// back), and what each org of a revert run came to. The state changes
// (the mark, completed → ready) are in the state tracker.
import type { Db, DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;
/** The migration type a revert takes orgs back from. */
export const MIGRATED = 'phase_2_migration';

/** Completed orgs in org_id order: the named ones (or all), at most `limit`. */
export async function completedOrgs(
  q: Q,
  names: string[] | null,
  limit: number | null,
  after: string | null = null,
): Promise<{ name: string; guid: string }[]> {
  const { rows } = await q.query(
    `SELECT org_name AS name, org_id AS guid FROM org_migration_state
     WHERE migration_type = $1 AND state = 'completed' AND ($2::text[] IS NULL OR org_name = ANY($2)) AND ($4::text IS NULL OR org_id > $4)
     ORDER BY org_id LIMIT $3`,
    [MIGRATED, names, limit, after],
  );
  return rows;
}

export async function isCompleted(q: Q, orgId: string): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM org_migration_state WHERE migration_type = $1 AND org_id = $2 AND state = 'completed'`, [MIGRATED, orgId]);
  return rows.length === 1;
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

/** Whether this revert run has recorded an outcome for the org (it was counted then). */
export async function hasResult(q: Q, runId: string, orgName: string): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM mover.revert_results WHERE run_id = $1 AND org_name = $2`, [runId, orgName]);
  return rows.length === 1;
}

/** The org's latest revert result, for GET /orgs/:name. */
export async function latestResult(q: Q, orgName: string): Promise<RevertResult | null> {
  const { rows } = await q.query(
    `SELECT run_id::text AS run_id, org_name, outcome, written_back, differences, detail, at FROM mover.revert_results WHERE org_name = $1 ORDER BY at DESC LIMIT 1`,
    [orgName],
  );
  return rows[0] ?? null;
}

/** Orgs of a revert run that were refused or failed, with why (for the run's status). */
export async function unrevertedInRun(
  q: Q,
  runId: string,
  limit = 100,
): Promise<{ org_name: string; outcome: RevertOutcome; detail: string | null; differences: number }[]> {
  const { rows } = await q.query(
    `SELECT org_name, outcome, detail, jsonb_array_length(differences)::int AS differences FROM mover.revert_results
     WHERE run_id = $1 AND outcome <> 'reverted' ORDER BY org_name LIMIT $2`,
    [runId, limit],
  );
  return rows;
}
