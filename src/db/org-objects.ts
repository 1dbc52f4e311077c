// The target rows: an org's containers and groups in SQL.
import { fenceRefusal } from '../errors.js';
import { beforeWrite } from '../stores/pause-point.js';
import type { Db, DbClient } from '../stores/postgres.js';
import type { FencedOrg } from './state-tracker.js';
import { OBJECT_TABLES, type ObjectRow, type ObjectTable } from '../migration/types.js';

type Q = Db | DbClient;
// Chef's org_id columns are CHAR(32): every comparison with them casts the
// parameter to bpchar, or PostgreSQL compares as text and cannot use their
// (org_id, name) index — a full scan of Chef's tables per org.

const quoted = (t: ObjectTable) => `"${t}"`;

const unnestRows = (base: number) =>
  `SELECT i, $1, a, n, u, c, m FROM unnest($${base}::text[], $${base + 1}::text[], $${base + 2}::text[], $${base + 3}::text[], $${base + 4}::timestamp[], $${base + 5}::timestamp[]) AS t(i, a, n, u, c, m)`;
/**
 * Chef writes and reads created_at and updated_at (timestamp without time
 * zone) as UTC. A JS Date sent as it is would be rendered in the host's local
 * time by pg; an ISO string is UTC whatever TZ the fleet runs under, and
 * PostgreSQL takes its wall clock for these columns.
 */
const utc = (d: Date) => d.toISOString();
const arrays = (r: ObjectRow[]) => [
  r.map((x) => x.id),
  r.map((x) => x.authz_id),
  r.map((x) => x.name),
  r.map((x) => x.last_updated_by),
  r.map((x) => utc(x.created_at)),
  r.map((x) => utc(x.updated_at)),
];

/** Inserts one table's rows for an org in one statement: containers, groups, or the benchmark's floor_ copies of them (it writes rows this way). */
export async function insertObjects(q: Q, table: string, orgId: string, rows: ObjectRow[]): Promise<number> {
  if (!rows.length) return 0;
  const res = await q.query(`INSERT INTO "${table}" (id, org_id, authz_id, name, last_updated_by, created_at, updated_at) ${unnestRows(2)}`, [
    orgId,
    ...arrays(rows),
  ]);
  return res.rowCount ?? 0;
}

/**
 * Replaces all of an org's rows in one call (one round trip, atomic), for the
 * delivery holding the org: the statement itself refuses a stale fence
 * (MVF01; OwnershipLostError here) and then writes nothing. The old
 * rows, if a delivery before this one left any, are deleted before the new
 * ones go in (src/db/functions.sql says why that takes a function). Rows
 * mover did not write (the org was created on SQL, or its rows came some
 * other way) are never replaced: then nothing is written and their count
 * comes back, for the caller to fail the org on. Otherwise the org's rows as
 * SQL then holds them come back, for verify.
 */
export async function replaceOrgObjects(
  q: Q,
  key: FencedOrg,
  rows: Record<ObjectTable, ObjectRow[]>,
): Promise<{ foreignRows: number; sql: Record<ObjectTable, SqlObject[]> }> {
  await beforeWrite('copy', { orgId: key.orgId });
  let res;
  try {
    res = await q.query({
      name: 'replace-and-read-org-objects',
      text: `SELECT mover.replace_and_read_org_objects($1, $2, $3, $4, $5, $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamp[], $11::timestamp[],
       $12::text[], $13::text[], $14::text[], $15::text[], $16::timestamp[], $17::timestamp[]) AS r`,
      values: [key.type, key.orgId, key.runId, key.leaseToken, key.generation, ...arrays(rows.containers), ...arrays(rows.groups)],
    });
  } catch (err) {
    throw fenceRefusal(err);
  }
  const r = res.rows[0].r as { foreign_rows: number; rows?: [ObjectTable, string, string, string, string][] };
  const sql: Record<ObjectTable, SqlObject[]> = { containers: [], groups: [] };
  // Rows come back only when nothing foreign stopped the write.
  for (const [t, id, name, authz_id, last_updated_by] of r.rows ?? []) sql[t].push({ id, name, authz_id, last_updated_by });
  return { foreignRows: r.foreign_rows, sql };
}

/** Rows of the org in SQL that mover did not write (0 when mover wrote the ones there). */
export async function foreignRowCount(q: Q, type: string, orgId: string): Promise<number> {
  const { rows } = await q.query({ name: 'foreign-row-count', text: `SELECT mover.foreign_row_count($1, $2) AS n`, values: [type, orgId] });
  return rows[0].n;
}

/**
 * Deletes the org's rows only if mover wrote them (and marks them gone);
 * returns how many went. Only inside a transaction that holds the org first
 * (a restore's holdStartedOrg, a completion, a reset's conditional move): it
 * carries no fence of its own.
 */
export async function deleteOwnedOrgObjects(q: DbClient, type: string, orgId: string): Promise<number> {
  const { rows } = await q.query(
    `WITH own AS (UPDATE mover.org_progress SET rows_in_sql = false, updated_at = now() WHERE migration_type = $2 AND org_id = $1 AND rows_in_sql RETURNING org_id),
       c AS (DELETE FROM containers WHERE org_id = $1::bpchar AND EXISTS (SELECT 1 FROM own) RETURNING 1),
       g AS (DELETE FROM "groups" WHERE org_id = $1::bpchar AND EXISTS (SELECT 1 FROM own) RETURNING 1)
     SELECT (SELECT count(*) FROM c)::int + (SELECT count(*) FROM g)::int AS n`,
    [orgId, type],
  );
  return rows[0].n;
}

/** Of the given org ids, those with any containers or groups row in SQL. */
export async function orgsWithSqlRows(q: Q, orgIds: string[]): Promise<Set<string>> {
  if (!orgIds.length) return new Set();
  const { rows } = await q.query(
    `SELECT org_id::text AS org_id FROM containers WHERE org_id = ANY($1::bpchar[])
     UNION SELECT org_id::text FROM "groups" WHERE org_id = ANY($1::bpchar[])`,
    [orgIds],
  );
  return new Set(rows.map((r) => r.org_id));
}

export interface SqlObject {
  id: string;
  name: string;
  authz_id: string;
  last_updated_by: string;
}

/** An org's rows of both tables, in one query. */
export async function readAllObjects(q: Q, orgId: string): Promise<Record<ObjectTable, SqlObject[]>> {
  const { rows } = await q.query({
    name: 'read-all-org-objects',
    text: `SELECT 'containers' AS t, id, name, authz_id, last_updated_by FROM containers WHERE org_id = $1::bpchar
     UNION ALL SELECT 'groups', id, name, authz_id, last_updated_by FROM "groups" WHERE org_id = $1::bpchar`,
    values: [orgId],
  });
  const out: Record<ObjectTable, SqlObject[]> = { containers: [], groups: [] };
  for (const r of rows) out[r.t as ObjectTable].push({ id: r.id, name: r.name, authz_id: r.authz_id, last_updated_by: r.last_updated_by });
  return out;
}

export async function countObjects(q: Q, orgId?: string): Promise<Record<ObjectTable, number>> {
  const out = { containers: 0, groups: 0 };
  for (const t of OBJECT_TABLES) {
    const { rows } = await q.query(`SELECT count(*)::int AS n FROM ${quoted(t)} WHERE ($1::bpchar IS NULL OR org_id = $1::bpchar)`, [orgId ?? null]);
    out[t] = rows[0].n;
  }
  return out;
}
