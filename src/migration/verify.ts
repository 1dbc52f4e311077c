// Verification: an org's containers and groups in SQL against the rows its
// CouchDB documents plan to (src/migration/plan-objects.ts), read from SQL
// now: the purge's re-verification and the revert's look for writes made on
// SQL (both against a plan made from CouchDB now). The migration's verify
// step compares the same way (compareRows) on the rows its copy's write
// returned, with no read of its own.
import type { Logger } from 'pino';
import type { Stores } from './stores.js';
import { readAllObjects } from '../db/org-objects.js';
import type { ObjectRow, ObjectTable } from './types.js';
import { classifyPgError } from '../stores/postgres.js';
import type { CouchDoc } from '../stores/couch-docs.js';
import { authzForDocs } from './authz.js';
import { compareRows, type OrgDiff } from './compare.js';
import { planObjects, type ObjectPlan } from './plan-objects.js';

export type SqlObjects = Awaited<ReturnType<typeof readAllObjects>>;

export interface Verification {
  diff: OrgDiff;
  sql: SqlObjects;
}

/** SQL against a plan already made, read from SQL now. */
export async function verifyAgainstPlan(ctx: Stores, orgId: string, plan: Record<ObjectTable, ObjectRow[]>): Promise<Verification> {
  let sql: SqlObjects;
  try {
    sql = await readAllObjects(ctx.db, orgId);
  } catch (err) {
    throw classifyPgError(err, 'read containers and groups');
  }
  return { diff: compareRows(plan, sql), sql };
}

/** SQL against what CouchDB holds for the org now, planned by the same rules the migration applied. */
export async function verifyAgainstCouch(ctx: Stores, orgId: string, log?: Logger): Promise<Verification & { docs: CouchDoc[]; plan: ObjectPlan }> {
  const docs = await ctx.couch.readOrgObjects(orgId);
  const plan = planObjects(docs, await authzForDocs(ctx, docs, log));
  return { ...(await verifyAgainstPlan(ctx, orgId, plan)), docs, plan };
}
