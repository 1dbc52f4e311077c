// Purges (phase 4), SQL records and reads only: what each org of a purge run
// came to, and the run's totals. Its state changes (completed →
// purge_started → purge_successful, or back to completed) are the state
// tracker's (moveOrg).
import { fenceRefusal } from '../errors.js';
import { beforeWrite } from '../stores/pause-point.js';
import { PHASE_2_MIGRATION } from '../queue-names.js';
import type { Db, DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;

export type PurgeOutcome = 'purged' | 'would_purge' | 'unverified';

/**
 * The org's result in the run, by the holder of its lease (org id, leaseToken):
 * the statement is refused (OwnershipLostError) once the lease is another's,
 * so a paused pass cannot overwrite a later one's result. A batch delivered
 * again writes the same line again.
 */
export async function recordPurge(
  q: Q,
  r: { runId: string; orgName: string; orgId: string; leaseToken: string; outcome: PurgeOutcome; docs?: number; detail?: string },
): Promise<void> {
  await beforeWrite('purge_record', { orgId: r.orgId });
  try {
    await q.query(
      `WITH leased AS (SELECT mover.hold_lease($6, $7, $8) AS ok)
       INSERT INTO mover.purge_results (run_id, org_name, outcome, docs, detail) SELECT $1, $2, $3, $4, $5 FROM leased
       ON CONFLICT (run_id, org_name) DO UPDATE SET outcome = EXCLUDED.outcome, docs = EXCLUDED.docs, detail = EXCLUDED.detail, at = now()`,
      [r.runId, r.orgName, r.outcome, r.docs ?? 0, r.detail ?? null, PHASE_2_MIGRATION, r.orgId, r.leaseToken],
    );
  } catch (err) {
    throw fenceRefusal(err);
  }
}

export interface PurgeReport {
  purged: number;
  docs_removed: number;
  would_purge: number;
  would_remove_docs: number;
  unverified_count: number;
  /** The first `limit` orgs left unverified, by name, with why. */
  unverified: { org: string; reason: string }[];
}

/** A purge run's totals and its unverified orgs (the first `limit`, by name). */
export async function purgeReport(q: Q, runId: string, limit = 200): Promise<PurgeReport> {
  const totals = (
    await q.query(
      `SELECT count(*) FILTER (WHERE outcome = 'purged')::int AS purged,
              COALESCE(sum(docs) FILTER (WHERE outcome = 'purged'), 0)::int AS docs_removed,
              count(*) FILTER (WHERE outcome = 'would_purge')::int AS would_purge,
              COALESCE(sum(docs) FILTER (WHERE outcome = 'would_purge'), 0)::int AS would_remove_docs,
              count(*) FILTER (WHERE outcome = 'unverified')::int AS unverified_count
       FROM mover.purge_results WHERE run_id = $1`,
      [runId],
    )
  ).rows[0];
  const { rows } = await q.query(
    `SELECT org_name AS org, COALESCE(detail, 'mismatch') AS reason FROM mover.purge_results WHERE run_id = $1 AND outcome = 'unverified' ORDER BY org_name LIMIT $2`,
    [runId, limit],
  );
  return { ...totals, unverified: rows };
}
