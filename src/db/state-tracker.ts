// The legacy moser_state_tracker, one conditional SQL statement per
// operation: the expected current state sits in the WHERE clause and the
// changed rows come back, so two workers can never both start one org and a
// stale job can never move an org that has moved on.
import type { Db, DbClient } from '../stores/postgres.js';

export const ORG_STATES = ['holding', 'ready', 'started', 'completed', 'failed', 'purge_started', 'purge_successful'] as const;
export type OrgState = (typeof ORG_STATES)[number];

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
}

type Q = Db | DbClient;
const COLUMNS = 'org_name, org_id, migration_type, state, fail_location, fail_detail, migration_start, migration_end, run_id, current_step';

/** Legacy insert_one_org: 'duplicate' is the legacy 23505, "already captured". */
export async function insertOrgs(q: Q, type: string, orgs: { name: string; guid: string }[]): Promise<{ inserted: string[]; duplicate: string[] }> {
  if (!orgs.length) return { inserted: [], duplicate: [] };
  const { rows } = await q.query(
    `INSERT INTO org_migration_state (org_name, org_id, migration_type)
     SELECT n, g, $3 FROM unnest($1::text[], $2::text[]) AS t(n, g)
     ON CONFLICT DO NOTHING RETURNING org_name`,
    [orgs.map((o) => o.name), orgs.map((o) => o.guid), type],
  );
  const inserted = new Set(rows.map((r) => r.org_name as string));
  return { inserted: orgs.filter((o) => inserted.has(o.name)).map((o) => o.name), duplicate: orgs.filter((o) => !inserted.has(o.name)).map((o) => o.name) };
}

/** Legacy next_ready_org, for many: the ready orgs ordered by org_id. */
export async function readyOrgs(q: Q, type: string, limit: number | null): Promise<{ org_name: string; org_id: string }[]> {
  const { rows } = await q.query(
    `SELECT org_name, org_id FROM org_migration_state WHERE migration_type = $1 AND state = 'ready' ORDER BY org_id LIMIT $2`,
    [type, limit],
  );
  return rows;
}

/** ready → started, only while the run is still working (halt and fatal stop close this door). */
export async function startOrg(q: Q, type: string, orgName: string, runId: string, firstStep = 'start'): Promise<OrgStateRow | null> {
  const { rows } = await q.query({
    name: 'start-org',
    text: `UPDATE org_migration_state s SET state = 'started', run_id = $3, migration_start = now() AT TIME ZONE 'utc', migration_end = NULL,
            fail_location = NULL, fail_detail = NULL, current_step = $4, updated_at = now()
     WHERE s.migration_type = $1 AND s.org_name = $2 AND s.state = 'ready'
       AND EXISTS (SELECT 1 FROM migration_runs r WHERE r.id = $3 AND r.state = 'working')
     RETURNING ${COLUMNS}`,
    values: [type, orgName, runId, firstStep],
  });
  return rows[0] ?? null;
}

/** Records the step a started org is in, so a resumed or reconciled job knows where it stood. */
export async function setStep(q: Q, type: string, orgName: string, runId: string, step: string): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE org_migration_state SET current_step = $4, updated_at = now()
     WHERE migration_type = $1 AND org_name = $2 AND state = 'started' AND run_id = $3`,
    [type, orgName, runId, step],
  );
  return rowCount === 1;
}

/**
 * started → completed, for the run that started it, and counted in the run
 * by the same statement (one round trip, and never counted twice).
 */
export async function completeOrg(q: Q, type: string, orgName: string, runId: string): Promise<{ runMayBeDone: boolean } | null> {
  const { rows } = await q.query({
    name: 'complete-org',
    text: `WITH moved AS (
       UPDATE org_migration_state SET state = 'completed', migration_end = now() AT TIME ZONE 'utc', current_step = NULL, updated_at = now()
       WHERE migration_type = $1 AND org_name = $2 AND state = 'started' AND run_id = $3 RETURNING run_id)
     UPDATE migration_runs r SET orgs_finished = orgs_finished + 1 FROM moved WHERE r.id = moved.run_id
     RETURNING r.orgs_finished + r.orgs_skipped >= r.enqueued OR r.state <> 'working' AS run_may_be_done`,
    values: [type, orgName, runId],
  });
  return rows[0] ? { runMayBeDone: rows[0].run_may_be_done } : null;
}

/** started → failed with the step that failed. */
export async function failOrg(q: Q, type: string, orgName: string, runId: string | null, location: string, detail: string): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE org_migration_state SET state = 'failed', fail_location = left($4, 50), fail_detail = $5,
            migration_end = now() AT TIME ZONE 'utc', current_step = NULL, updated_at = now()
     WHERE migration_type = $1 AND org_name = $2 AND state = 'started' AND ($3::bigint IS NULL OR run_id = $3)`,
    [type, orgName, runId, location, detail],
  );
  return rowCount === 1;
}

/** holding → ready: all of them (legacy ready_remaining_migration) or the named ones. */
export async function readyHolding(q: Q, type: string, names?: string[]): Promise<string[]> {
  const { rows } = await q.query(
    `UPDATE org_migration_state SET state = 'ready', updated_at = now()
     WHERE migration_type = $1 AND state = 'holding' AND ($2::text[] IS NULL OR org_name = ANY($2))
     RETURNING org_name`,
    [type, names ?? null],
  );
  return rows.map((r) => r.org_name);
}

/** A conditional move of the named orgs, returning the names that moved. */
export async function moveOrgs(q: Q, type: string, names: string[], from: OrgState, to: OrgState): Promise<string[]> {
  const { rows } = await q.query(
    `UPDATE org_migration_state SET state = $4::org_state, fail_location = CASE WHEN $4::org_state = 'holding' THEN NULL ELSE fail_location END,
            current_step = NULL, updated_at = now()
     WHERE migration_type = $1 AND org_name = ANY($2) AND state = $3 RETURNING org_name`,
    [type, names, from, to],
  );
  return rows.map((r) => r.org_name);
}

/** Legacy force_org_to_state: the operator's override, no guard by design. */
export async function forceState(q: Q, type: string, orgName: string, to: OrgState): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE org_migration_state SET state = $3, current_step = NULL, updated_at = now() WHERE migration_type = $1 AND org_name = $2`,
    [type, orgName, to],
  );
  return rowCount === 1;
}

export async function getOrgStates(q: Q, orgName: string): Promise<OrgStateRow[]> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM org_migration_state WHERE org_name = $1 ORDER BY migration_type`, [orgName]);
  return rows;
}

export async function getOrgState(q: Q, type: string, orgName: string): Promise<OrgStateRow | null> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM org_migration_state WHERE migration_type = $1 AND org_name = $2`, [type, orgName]);
  return rows[0] ?? null;
}

/** A page ordered by org_name; the cursor is the last name of the previous page. */
export async function listOrgs(q: Q, type: string, opts: { state?: OrgState; limit: number; cursor?: string }): Promise<OrgStateRow[]> {
  const { rows } = await q.query(
    `SELECT ${COLUMNS} FROM org_migration_state
     WHERE migration_type = $1 AND ($2::org_state IS NULL OR state = $2) AND ($3::text IS NULL OR org_name > $3)
     ORDER BY org_name LIMIT $4`,
    [type, opts.state ?? null, opts.cursor ?? null, opts.limit],
  );
  return rows;
}

/** Orgs a run started that are still in 'started': what the reconciler looks at. */
export async function startedOrgs(q: Q, type: string): Promise<OrgStateRow[]> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM org_migration_state WHERE migration_type = $1 AND state = 'started'`, [type]);
  return rows;
}

export async function countByState(q: Q, type?: string): Promise<{ migration_type: string; state: OrgState; count: number }[]> {
  const { rows } = await q.query(
    `SELECT migration_type, state, count(*)::int AS count FROM org_migration_state WHERE ($1::text IS NULL OR migration_type = $1) GROUP BY 1, 2 ORDER BY 1, 2`,
    [type ?? null],
  );
  return rows;
}
