// Before a revert routes an org back to CouchDB: what the Chef API changed in
// SQL since the org migrated (a group created, a container renamed or
// deleted), and, when the operator asks for it, those changes written back
// to CouchDB in the legacy document shape, so the revert loses nothing and
// resurrects nothing.
import type { Stores } from './stores.js';
import type { SqlObject } from '../db/org-objects.js';
import type { ObjectTable } from './types.js';
import { OrgDataError, OrgRefusal } from '../errors.js';
import { orgDatabaseName, TYPES, type CouchDoc } from '../stores/couch-docs.js';
import { verifyAgainstCouch } from './verify.js';
import { beforeWrite } from '../stores/pause-point.js';
import { randomBytes } from 'node:crypto';

export interface Difference {
  table: ObjectTable;
  id: string;
  change: 'created_on_sql' | 'renamed_on_sql' | 'deleted_on_sql' | 'authz_differs';
  sql_name?: string;
  couch_name?: string;
}

export interface OrgComparison {
  differences: Difference[];
  /** The org's container and group documents as read. */
  docs: CouchDoc[];
  sql: Record<ObjectTable, SqlObject[]>;
}

const LEGACY: Record<ObjectTable, { type: string; nameField: string }> = {
  containers: { type: TYPES.container, nameField: 'containername' },
  groups: { type: TYPES.group, nameField: 'groupname' },
};

/** SQL against CouchDB for one org, with the same rules the migration applied to the documents. */
export async function compareOrg(ctx: Stores, orgId: string): Promise<OrgComparison> {
  const { docs, plan, sql, diff } = await verifyAgainstCouch(ctx, orgId);
  const differences: Difference[] = [];
  for (const table of ['containers', 'groups'] as const) {
    const inSql = new Map(sql[table].map((r) => [r.id, r]));
    const inCouch = new Map(plan[table].map((r) => [r.id, r]));
    for (const id of diff[table].extra) differences.push({ table, id, change: 'created_on_sql', sql_name: inSql.get(id)!.name });
    for (const id of diff[table].missing) differences.push({ table, id, change: 'deleted_on_sql', couch_name: inCouch.get(id)!.name });
    for (const id of diff[table].different) {
      const s = inSql.get(id)!;
      const c = inCouch.get(id)!;
      const change = s.authz_id.trim().toLowerCase() === c.authz_id ? 'renamed_on_sql' : 'authz_differs';
      differences.push({ table, id, change, sql_name: s.name, couch_name: c.name });
    }
  }
  return { differences, docs, sql };
}

/**
 * CouchDB refused documents of the write-back because they changed since the
 * comparison read them (another revision now: a conflict), so none of them
 * was overwritten. A revert that meets one does not go on: it is refused and
 * put back, and says which documents.
 */
export class WriteBackConflict extends OrgRefusal {
  constructor(
    readonly dbName: string,
    readonly docIds: string[],
  ) {
    super(
      `write back to ${dbName}: ${docIds.length} documents changed in CouchDB since they were compared (conflict: ${docIds.slice(0, 5).join(', ')}${docIds.length > 5 ? ', ...' : ''}); nothing of them was overwritten`,
      {
        conflicts: docIds,
      },
    );
  }
}

/**
 * Makes the org's CouchDB documents say what SQL says: a document made for
 * each object created on SQL (with its AuthJoin in opscode_account), the name
 * of each renamed one changed, each deleted one deleted. An authz id that
 * differs cannot be written back (the caller refuses the org). Every write
 * goes by the revision the comparison read (a new document by its absence),
 * so a writer that is stale (it paused, and the org moved on) meets a
 * conflict instead of overwriting: WriteBackConflict. Returns how many
 * documents were written.
 */
export async function writeBack(ctx: Stores, org: { name: string; guid: string }, cmp: OrgComparison): Promise<number> {
  const docsById = new Map(cmp.docs.map((d) => [d._id, d]));
  const sqlById = new Map([...cmp.sql.containers, ...cmp.sql.groups].map((r) => [r.id, r]));
  const writes: Record<string, unknown>[] = [];
  const newObjects: SqlObject[] = [];
  for (const d of cmp.differences) {
    const legacy = LEGACY[d.table];
    const existing = docsById.get(d.id);
    const row = sqlById.get(d.id);
    if (d.change === 'deleted_on_sql') {
      writes.push({ _id: d.id, _rev: existing!._rev, _deleted: true });
    } else if (d.change === 'renamed_on_sql') {
      writes.push({ ...existing!, [legacy.nameField]: row!.name, ...(d.table === 'containers' ? { containerpath: row!.name } : {}) });
    } else if (d.change === 'created_on_sql') {
      newObjects.push(row!);
      writes.push({
        // A document the migration skipped may hold the id: it is replaced, keeping its revision.
        ...(existing ? { _rev: existing._rev } : {}),
        _id: d.id,
        'couchrest-type': legacy.type,
        [legacy.nameField]: row!.name,
        requester_id: row!.last_updated_by,
        orgname: org.name,
        // Group membership lives in authz, not in this document.
        ...(d.table === 'containers' ? { containerpath: row!.name } : { actor_and_group_names: { users: [], clients: [], groups: [] } }),
      });
    }
  }
  if (!writes.length) return 0;
  const dbName = orgDatabaseName(org.guid);
  await beforeWrite('write_back', { orgId: org.guid, orgName: org.name });
  const results = await ctx.couch.call('org_write', () => ctx.couch.server.use(dbName).bulk({ docs: writes }), `write back to ${dbName}`);
  const conflicts = results.filter((r) => r.error === 'conflict');
  const failed = results.filter((r) => r.error && r.error !== 'conflict');
  if (failed.length)
    throw new OrgDataError(`write back to ${dbName}: ${failed.length} documents refused (${failed.map((r) => `${r.id}: ${r.error}`).join(', ')})`);
  if (conflicts.length)
    throw new WriteBackConflict(
      dbName,
      conflicts.map((r) => r.id ?? ''),
    );
  // An object made on SQL has no AuthJoin: the revert would skip it as "missing authz data" without one.
  const known = await ctx.couch.findAuthJoins(newObjects.map((r) => r.id));
  const joins = newObjects
    .filter((r) => !known.has(r.id))
    .map((r) => ({ _id: randomBytes(16).toString('hex'), json_class: TYPES.authJoin, user_object_id: r.id, auth_object_id: r.authz_id.trim() }));
  if (joins.length) {
    const res = await ctx.couch.call(
      'account_write',
      () => ctx.couch.server.use(ctx.couch.accountDb).bulk({ docs: joins }),
      `write back to ${ctx.couch.accountDb}`,
      ctx.couch.accountDb,
    );
    const bad = res.filter((r) => r.error);
    if (bad.length) throw new OrgDataError(`write back to ${ctx.couch.accountDb}: ${bad.length} AuthJoins refused`);
  }
  return writes.length + joins.length;
}
