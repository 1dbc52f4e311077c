// Reverts (legacy demigration), SQL reads and records only: which orgs a
// revert takes, and what each org of a revert run came to. Its state changes
// (completed → started → ready, or back to completed) are the state
// tracker's, as for any per-org kind.
import { PHASE_2_MIGRATION as MIGRATED } from '../queue-names.js';
import type { Db, DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;

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
