// The estate survey's SQL (migrations/017_estate_survey.sql): what it reads of
// Chef's tables for a batch of orgs (their state, their rows in SQL, the
// rows mover did not write, by the claim's own mover.foreign_row_count), and
// its results, which it writes only into mover's schema.
import { inTransaction, type Db, type DbClient } from '../stores/postgres.js';
import type { OrgSurvey } from '../migration/types.js';

type Q = Db | DbClient;

export interface SqlStanding {
  state: string | null;
  sql_rows: number;
  foreign_rows: number;
}

/** Each org's state in `type`, its containers and groups rows in SQL, and those mover did not write (what the migration's claim refuses). */
export async function sqlStanding(q: Q, type: string, guids: string[]): Promise<Map<string, SqlStanding>> {
  const { rows } = await q.query(
    `SELECT o.org_id, s.state::text AS state, mover.foreign_row_count($1, o.org_id) AS foreign_rows,
            ((SELECT count(*) FROM containers c WHERE c.org_id = o.org_id::bpchar) + (SELECT count(*) FROM "groups" g WHERE g.org_id = o.org_id::bpchar))::int AS sql_rows
     FROM unnest($2::text[]) AS o(org_id) LEFT JOIN org_migration_state s ON s.migration_type = $1 AND s.org_id = o.org_id`,
    [type, guids],
  );
  return new Map(rows.map((r) => [r.org_id, { state: r.state, sql_rows: r.sql_rows, foreign_rows: r.foreign_rows }]));
}

/**
 * A batch's results in one transaction: each org's row and its findings
 * replaced, and the batch's totals. A batch delivered again writes the same
 * orgs again: nothing is counted twice. The batch's row is written first, so
 * two deliveries of one batch at once take turns.
 */
export async function recordBatch(db: Db, runId: string, batch: number, orgs: OrgSurvey[], totals: Record<string, number>): Promise<void> {
  await inTransaction(db, async (c) => {
    await c.query(
      `INSERT INTO mover.survey_batches (run_id, batch, orgs, totals) VALUES ($1, $2, $3, $4)
       ON CONFLICT (run_id, batch) DO UPDATE SET orgs = EXCLUDED.orgs, totals = EXCLUDED.totals`,
      [runId, batch, orgs.length, JSON.stringify(totals)],
    );
    const names = orgs.map((o) => o.org_name);
    await c.query(`DELETE FROM mover.survey_findings WHERE run_id = $1 AND org_name = ANY($2)`, [runId, names]);
    await c.query(
      `INSERT INTO mover.survey_orgs AS s (run_id, batch, org_name, org_id, migration_state, containers, "groups", documents, bytes, copy_ms,
                                         served_from, sql_rows, foreign_rows, refusal, findings, detail)
       SELECT $1, $2, r.org_name, r.org_id, r.migration_state, r.containers, r."groups", r.documents, r.bytes, r.copy_ms,
              r.served_from, r.sql_rows, r.foreign_rows, r.refusal, r.findings, r.detail
       FROM jsonb_to_recordset($3::jsonb) AS r(org_name text, org_id text, migration_state text, containers int, "groups" int, documents int, bytes bigint,
                                              copy_ms int, served_from text, sql_rows int, foreign_rows int, refusal text, findings text[], detail jsonb)
       ON CONFLICT (run_id, org_name) DO UPDATE SET batch = EXCLUDED.batch, org_id = EXCLUDED.org_id, migration_state = EXCLUDED.migration_state,
         containers = EXCLUDED.containers, "groups" = EXCLUDED."groups", documents = EXCLUDED.documents, bytes = EXCLUDED.bytes,
         copy_ms = EXCLUDED.copy_ms, served_from = EXCLUDED.served_from, sql_rows = EXCLUDED.sql_rows, foreign_rows = EXCLUDED.foreign_rows,
         refusal = EXCLUDED.refusal, findings = EXCLUDED.findings, detail = EXCLUDED.detail, surveyed_at = now()`,
      [runId, batch, JSON.stringify(orgs)],
    );
    await c.query(
      `INSERT INTO mover.survey_findings (run_id, finding, org_name)
       SELECT $1, f, o.org_name FROM jsonb_to_recordset($2::jsonb) AS o(org_name text, findings text[]), unnest(o.findings) AS f`,
      [runId, JSON.stringify(orgs.map((o) => ({ org_name: o.org_name, findings: o.findings })))],
    );
  });
}

/** A survey's totals so far: its batches' totals summed (one row a batch, never a row an org). */
export async function surveyTotals(q: Q, runId: string): Promise<Record<string, number>> {
  const { rows } = await q.query(
    `SELECT t.key, sum(t.value::numeric)::float8 AS n FROM mover.survey_batches b, jsonb_each_text(b.totals) AS t WHERE b.run_id = $1 GROUP BY t.key`,
    [runId],
  );
  return Object.fromEntries(rows.map((r) => [r.key, Number(r.n)]));
}

export interface SurveyedOrg extends OrgSurvey {
  surveyed_at: string;
}

const COLUMNS = `org_name, org_id, migration_state, containers, "groups", documents, bytes::float8 AS bytes, copy_ms, served_from, sql_rows, foreign_rows,
                 refusal, findings, detail, surveyed_at`;
const normalize = (r: Record<string, unknown>) => ({ ...r, surveyed_at: new Date(r.surveyed_at as string).toISOString() }) as SurveyedOrg;

/** The largest orgs of a survey by the bytes of their database, from the top of an index. */
export async function largestOrgs(q: Q, runId: string, limit: number): Promise<SurveyedOrg[]> {
  const { rows } = await q.query(
    // By the table's column (the list casts bytes), so the index answers it.
    `SELECT ${COLUMNS} FROM mover.survey_orgs s WHERE s.run_id = $1 AND s.bytes IS NOT NULL ORDER BY s.bytes DESC NULLS LAST, s.org_name LIMIT $2`,
    [runId, limit],
  );
  return rows.map(normalize);
}

/** One org as the latest survey that took it found it (GET /orgs/:name), or null. */
export async function surveyedOrg(q: Q, orgName: string): Promise<SurveyedOrg | null> {
  // Only the latest survey's rows are kept; both columns of the primary key find the row.
  const { rows } = await q.query(
    `SELECT ${COLUMNS} FROM mover.survey_orgs s WHERE s.run_id = (SELECT max(run_id) FROM mover.survey_orgs) AND s.org_name = $1`,
    [orgName],
  );
  return rows[0] ? normalize(rows[0]) : null;
}

/** A page of a survey's orgs by name after `after`: all of them, or those with `finding` (through its own index). */
export async function surveyPage(q: Q, runId: string, page: { finding?: string; after?: string; limit: number }): Promise<SurveyedOrg[]> {
  const { rows } = page.finding
    ? await q.query(
        `SELECT ${COLUMNS} FROM mover.survey_orgs s
         WHERE s.run_id = $1 AND s.org_name IN (SELECT f.org_name FROM mover.survey_findings f WHERE f.run_id = $1 AND f.finding = $2 AND f.org_name > $3
                                                ORDER BY f.org_name LIMIT $4)
         ORDER BY s.org_name`,
        [runId, page.finding, page.after ?? '', page.limit],
      )
    : await q.query(`SELECT ${COLUMNS} FROM mover.survey_orgs WHERE run_id = $1 AND org_name > $2 ORDER BY org_name LIMIT $3`, [
        runId,
        page.after ?? '',
        page.limit,
      ]);
  return rows.map(normalize);
}

/** Only the latest survey's results are kept: an earlier survey's go once a new one has taken its orgs. */
export async function dropEarlierSurveys(q: Q, runId: string): Promise<void> {
  for (const table of ['survey_orgs', 'survey_findings', 'survey_batches']) await q.query(`DELETE FROM mover.${table} WHERE run_id < $1`, [runId]);
}
