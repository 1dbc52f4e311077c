// phase_2_migration: the legacy per-org migration, step by step (DOMAIN.md).
// Steps 1 (ready → started) and 8 (started → completed/failed) are the frame's
// (src/runs/org-job.ts); this module is what happens in between, and how an
// org is put back when any of it fails.
import type { Context } from '../context.js';
import { deleteOwnedOrgObjects, foreignRowCount, readAllObjects, replaceOrgObjects, OBJECT_TABLES } from '../db/org-objects.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { cachedSettings } from '../db/settings.js';
import { OrgDataError } from '../errors.js';
import { authzForDocs } from '../migration/authz.js';
import { planObjects, type ObjectPlan } from '../migration/plan-objects.js';
import type { OrgJobKind, OrgRef } from '../runs/org-job.js';
import { classifyPgError } from '../stores/postgres.js';

export const type = 'phase_2_migration';

// The plan made by `migrate` is what `verify` checks SQL against, for the same delivery.
const plans = new WeakMap<OrgRef, ObjectPlan>();

/**
 * Step 1: before the org goes dark, make sure it is one this migration may
 * move: Chef serves its containers and groups from CouchDB now (dl_default,
 * dl_org_<org>, dl_override as Chef reads them), and SQL holds none of its
 * rows that mover did not write. An org that fails here is left exactly as
 * it was: restore writes no flag for it and deletes nothing.
 */
export async function preflight(ctx: Context, org: OrgRef) {
  // A resumed delivery may find the org routed to SQL by its own earlier steps.
  if (!org.resumed) {
    const routing = await ctx.darklaunch.effectiveRouting(org.orgName);
    const onSql = (['couchdb_containers', 'couchdb_groups'] as const).filter((f) => !routing.value[f]);
    if (onSql.length) {
      const why = onSql.map((f) => `${f} is false (${routing.from[f] ?? 'set in no hash'})`).join(', ');
      throw new OrgDataError(`Chef serves this org from SQL already: ${why}; mover moves only orgs served from CouchDB, so it leaves this one as it is`);
    }
  }
  const foreign = await foreignRowCount(ctx.db, type, org.orgId).catch((err) => {
    throw classifyPgError(err, 'preflight read');
  });
  if (foreign) throw new OrgDataError(`SQL already holds ${foreign} containers/groups rows for this org that mover did not write (made on SQL, or copied some other way); they are left as they are`);
}

/** Step 2: the org goes dark (503) so nothing writes while it moves. */
export async function setDown(ctx: Context, org: OrgRef) {
  await ctx.darklaunch.setOrgDown(org.orgName, true);
}

/**
 * Step 3: the drain wait (legacy sleep_time after going dark), so writes the
 * Chef API accepted just before 503 land before the copy. The job keeps its
 * slot while it waits: concurrency is the number of orgs dark at once.
 */
export async function drainWait(ctx: Context, org: OrgRef) {
  const ms = (await cachedSettings(ctx)).drainWaitMs;
  if (ms > 0) {
    org.log.debug({ wait_ms: ms }, 'drain wait');
    await sleep(ms);
  }
}

/** Step 4: read only the org's containers and groups; write them in one transaction. */
export async function migrate(ctx: Context, org: OrgRef) {
  const docs = await ctx.couch.readOrgObjects(org.orgId);
  const authz = await authzForDocs(ctx, docs, org.log);
  const plan = planObjects(docs, authz);
  for (const s of plan.skipped) org.log.warn({ doc_id: s.docId, table: s.table, reason: s.reason, kept_doc_id: s.keptDocId }, 'document skipped');
  for (const id of plan.noRequester) org.log.warn({ doc_id: id }, 'requester_id missing or malformed; last_updated_by set to zeros');
  let written;
  try {
    // Old rows go in the same statement: a job delivered twice leaves one set of rows, not two.
    written = await replaceOrgObjects(ctx.db, type, org.orgId, plan);
  } catch (err) {
    throw classifyPgError(err, 'write containers and groups');
  }
  if (written.foreignRows) {
    throw new OrgDataError(`SQL already holds ${written.foreignRows} containers/groups rows for this org that mover did not write (created on SQL, or copied some other way); they are left as they are`);
  }
  plans.set(org, plan);
  org.log.info({ containers: plan.containers.length, groups: plan.groups.length, skipped: plan.skipped.length }, 'org objects written');
}

/** Step 5: SQL holds exactly the planned rows for this org: same ids, names and authz ids, nothing else. */
export async function verify(ctx: Context, org: OrgRef) {
  const plan = plans.get(org);
  if (!plan) throw new OrgDataError('verify: no migration plan in this delivery');
  const all = await readAllObjects(ctx.db, org.orgId).catch((err) => {
    throw classifyPgError(err, 'verify read');
  });
  for (const t of OBJECT_TABLES) {
    const want = new Map(plan[t].map((r) => [r.id, `${r.name}\u0000${r.authz_id}`]));
    const have = all[t];
    const extra = have.filter((r) => !want.has(r.id)).map((r) => r.id);
    const wrong = have.filter((r) => want.has(r.id) && want.get(r.id) !== `${r.name}\u0000${r.authz_id.trim()}`).map((r) => r.id);
    const missing = [...want.keys()].filter((id) => !have.some((r) => r.id === id));
    if (extra.length || wrong.length || missing.length) {
      throw new OrgDataError(`verify: ${t} differ from CouchDB (missing ${missing.length}, extra ${extra.length}, different ${wrong.length})`, { missing, extra, wrong });
    }
  }
}

/** Step 6: route the org's containers and groups to SQL. */
export async function routeToSql(ctx: Context, org: OrgRef) {
  await ctx.darklaunch.routeOrg(org.orgName, false);
}

/** Step 7: the org answers again. */
export async function setUp(ctx: Context, org: OrgRef) {
  await ctx.darklaunch.setOrgDown(org.orgName, false);
}

export const kind: OrgJobKind = {
  type,
  steps: [
    { name: 'preflight', run: preflight },
    { name: 'set_503', run: setDown, checkpoint: true },
    { name: 'drain_wait', run: drainWait, checkpoint: true },
    { name: 'migrate', run: migrate },
    { name: 'verify', run: verify },
    { name: 'route_to_sql', run: routeToSql, checkpoint: true },
    { name: 'clear_503', run: setUp },
  ],
  // Served from CouchDB and up again first; only then are the partial rows
  // removed. An org that failed its preflight never went dark: no flag to write.
  restoreOutside: async (ctx, org, step) => {
    if (step !== 'preflight') await ctx.darklaunch.routeBackToCouch(org.orgName);
  },
  restore: async (_ctx, org, c) => {
    await deleteOwnedOrgObjects(c, type, org.orgId);
  },
};
