// SQL rows against what CouchDB says they should be, by document id: the one
// comparison behind verify (after the copy), the purge's re-verification and
// the revert's check for writes made on SQL.
import type { ObjectTable } from './types.js';

export interface RowKey {
  id: string;
  name: string;
  authz_id: string;
}

export interface TableDiff {
  /** In CouchDB (planned), not in SQL. */
  missing: string[];
  /** In SQL, not in CouchDB. */
  extra: string[];
  /** In both, with another name or authz id. */
  different: string[];
}

export type OrgDiff = Record<ObjectTable, TableDiff>;

const key = (r: RowKey) => `${r.name}\u0000${r.authz_id.trim().toLowerCase()}`;

export function compareRows(planned: Record<ObjectTable, RowKey[]>, sql: Record<ObjectTable, RowKey[]>): OrgDiff {
  const out = {} as OrgDiff;
  for (const t of ['containers', 'groups'] as const) {
    const want = new Map(planned[t].map((r) => [r.id, key(r)]));
    const have = new Map(sql[t].map((r) => [r.id, key(r)]));
    out[t] = {
      missing: [...want.keys()].filter((id) => !have.has(id)),
      extra: [...have.keys()].filter((id) => !want.has(id)),
      different: [...want].filter(([id, k]) => have.has(id) && have.get(id) !== k).map(([id]) => id),
    };
  }
  return out;
}

export const diffCount = (d: OrgDiff) => Object.values(d).reduce((n, t) => n + t.missing.length + t.extra.length + t.different.length, 0);

export function describeDiff(d: OrgDiff): string {
  return (['containers', 'groups'] as const)
    .map((t) => `${t}: missing ${d[t].missing.length}, extra ${d[t].extra.length}, different ${d[t].different.length}`)
    .join('; ');
}
