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
const quoted = (t: ObjectTable) => (t === 'groups' ? '"groups"' : 'containers');

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

export async function deleteOrgObjects(q: Q, orgId: string): Promise<number> {
  let n = 0;
  for (const t of OBJECT_TABLES) n += (await q.query(`DELETE FROM ${quoted(t)} WHERE org_id = $1`, [orgId])).rowCount ?? 0;
  return n;
}

export async function readObjects(q: Q, table: ObjectTable, orgId: string): Promise<{ id: string; name: string; authz_id: string }[]> {
  const { rows } = await q.query(`SELECT id, name, authz_id FROM ${quoted(table)} WHERE org_id = $1 ORDER BY id`, [orgId]);
  return rows;
}

export async function countObjects(q: Q, orgId?: string): Promise<Record<ObjectTable, number>> {
  const out = { containers: 0, groups: 0 };
  for (const t of OBJECT_TABLES) {
    const { rows } = await q.query(`SELECT count(*)::int AS n FROM ${quoted(t)} WHERE ($1::text IS NULL OR org_id = $1)`, [orgId ?? null]);
    out[t] = rows[0].n;
  }
  return out;
}
