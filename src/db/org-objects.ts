// The target rows: an org's containers and groups in SQL.
import type { Db, DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;

export interface ObjectRow {
  id: string;
  authz_id: string;
  name: string;
  last_updated_by: string;
  created_at: Date;
  updated_at: Date;
}

export type ObjectTable = 'containers' | 'groups';
export const OBJECT_TABLES: ObjectTable[] = ['containers', 'groups'];
const quoted = (t: ObjectTable) => `"${t}"`;

/** Inserts one table's rows for an org in one statement. */
export async function insertObjects(q: Q, table: ObjectTable, orgId: string, rows: ObjectRow[]): Promise<number> {
  if (!rows.length) return 0;
  const res = await q.query(
    `INSERT INTO ${quoted(table)} (id, org_id, authz_id, name, last_updated_by, created_at, updated_at)
     SELECT i, $1, a, n, u, c, m FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamp[], $7::timestamp[]) AS t(i, a, n, u, c, m)`,
    [orgId, rows.map((r) => r.id), rows.map((r) => r.authz_id), rows.map((r) => r.name), rows.map((r) => r.last_updated_by), rows.map((r) => r.created_at), rows.map((r) => r.updated_at)],
  );
  return res.rowCount ?? 0;
}

/** Both tables in one statement: one round trip on the per-org hot path. */
/**
 * Replaces all of an org's rows in one statement (atomic on its own, one
 * round trip): the old rows, if a delivery before this one left any, go in
 * the same statement that writes the new ones.
 */
export async function replaceOrgObjects(q: Q, orgId: string, rows: Record<ObjectTable, ObjectRow[]>): Promise<void> {
  const cols = (t: ObjectTable, base: number) =>
    `SELECT i, $1, a, n, u, c, m FROM unnest($${base}::text[], $${base + 1}::text[], $${base + 2}::text[], $${base + 3}::text[], $${base + 4}::timestamp[], $${base + 5}::timestamp[]) AS t(i, a, n, u, c, m)`;
  const arrays = (r: ObjectRow[]) => [r.map((x) => x.id), r.map((x) => x.authz_id), r.map((x) => x.name), r.map((x) => x.last_updated_by), r.map((x) => x.created_at), r.map((x) => x.updated_at)];
  await q.query({
    name: 'replace-org-objects',
    text: `WITH dc AS (DELETE FROM containers WHERE org_id = $1), dg AS (DELETE FROM "groups" WHERE org_id = $1),
       ic AS (INSERT INTO containers (id, org_id, authz_id, name, last_updated_by, created_at, updated_at) ${cols('containers', 2)}),
       ig AS (INSERT INTO "groups" (id, org_id, authz_id, name, last_updated_by, created_at, updated_at) ${cols('groups', 8)})
     SELECT 1`,
    values: [orgId, ...arrays(rows.containers), ...arrays(rows.groups)],
  });
}

export async function deleteOrgObjects(q: Q, orgId: string): Promise<number> {
  const { rows } = await q.query(
    `WITH c AS (DELETE FROM containers WHERE org_id = $1 RETURNING 1), g AS (DELETE FROM "groups" WHERE org_id = $1 RETURNING 1)
     SELECT (SELECT count(*) FROM c)::int + (SELECT count(*) FROM g)::int AS n`,
    [orgId],
  );
  return rows[0].n;
}

/** An org's rows of both tables, in one query. */
export async function readAllObjects(q: Q, orgId: string): Promise<Record<ObjectTable, { id: string; name: string; authz_id: string }[]>> {
  const { rows } = await q.query({
    name: 'read-all-org-objects',
    text: `SELECT 'containers' AS t, id, name, authz_id FROM containers WHERE org_id = $1
     UNION ALL SELECT 'groups', id, name, authz_id FROM "groups" WHERE org_id = $1`,
    values: [orgId],
  });
  const out: Record<ObjectTable, { id: string; name: string; authz_id: string }[]> = { containers: [], groups: [] };
  for (const r of rows) out[r.t as ObjectTable].push({ id: r.id, name: r.name, authz_id: r.authz_id });
  return out;
}

export async function countObjects(q: Q, orgId?: string): Promise<Record<ObjectTable, number>> {
  const out = { containers: 0, groups: 0 };
  for (const t of OBJECT_TABLES) {
    const { rows } = await q.query(`SELECT count(*)::int AS n FROM ${quoted(t)} WHERE ($1::text IS NULL OR org_id = $1)`, [orgId ?? null]);
    out[t] = rows[0].n;
  }
  return out;
}
