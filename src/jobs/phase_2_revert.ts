// phase_2_revert (legacy demigration): a completed org goes back to CouchDB,
// in the per-org frame (src/frame/org-job.ts) like the migration, along a
// path that starts at completed: the claim takes it completed → started, and
// it ends ready (reverted) or, put back on SQL and up, completed again
// (refused or failed) (docs/domain.md, section 8). It goes dark and waits the
// drain wait; then its SQL rows are compared with its CouchDB documents.
// Anything the Chef API changed on SQL since the migration would be lost (or a
// deleted object resurrected) by the revert, so by default such an org is
// refused, its differences recorded. With writeBack the differences are
// written to CouchDB first (src/migration/write-back.ts). Then the switch
// back: routed to CouchDB and up in one write, after which its SQL rows are
// deleted as it goes back to ready. Safe to re-run: an org that is not
// completed is skipped.
import type { Context } from '../context.js';
import { deleteOwnedOrgObjects } from '../db/org-objects.js';
import * as reverts from '../db/reverts.js';
import { getRun } from '../db/runs.js';
import { OrgDataError, OrgRefusal } from '../errors.js';
import { perOrgKind } from '../frame/per-org-kind.js';
import { flagsOf } from '../frame/held-org.js';
import type { OrgEnd, OrgMigration, OrgDelivery } from '../frame/org-job.js';
import { compareOrg, writeBack as writeToCouch, WriteBackConflict, type Difference, type OrgComparison } from '../migration/write-back.js';
import { couchConflicts } from '../metrics.js';
import { PHASE_2_MIGRATION, PHASE_2_REVERT } from '../queue-names.js';
import type { DbClient } from '../stores/postgres.js';
import { drainWait, set503 } from './phase_2_migration.js';

export const type = PHASE_2_REVERT;

/**
 * Before the org is claimed: only an org Chef serves from SQL is reverted.
 * One it serves from CouchDB already takes its writes there, and a write-back
 * of its SQL rows would overwrite them: it is refused, nothing of it changed.
 */
export async function preflight(ctx: Context, org: OrgDelivery) {
  const why = await ctx.darklaunch.whyNotServedFrom(org.orgName, 'sql');
  if (why) throw new OrgRefusal(`${why}; it is not reverted: its SQL rows may be stale, and a write-back would overwrite what Chef wrote to CouchDB`);
}

/** What this delivery found and wrote back, for the org's record when it is done. */
interface Found {
  cmp: OrgComparison;
  writtenBack: number;
}
const found = new WeakMap<OrgDelivery, Found>();

/**
 * Dark, after the drain wait (so writes in flight to SQL have landed): SQL
 * and CouchDB compared under the migration's planning rules. Differences
 * without writeBack, or an authz id that differs (which cannot be written
 * back), refuse the org: it is put back, on SQL and up.
 */
export async function compare(ctx: Context, org: OrgDelivery) {
  const cmp = await compareOrg(ctx, org.orgId);
  found.set(org, { cmp, writtenBack: 0 });
  if (!cmp.differences.length) return;
  const cannot = cmp.differences.filter((d) => d.change === 'authz_differs');
  const params = (await getRun(ctx.db, org.runId))?.params ?? {};
  const writeBackAsked = params.write_back === true;
  if (!writeBackAsked || cannot.length) {
    const why = cannot.length
      ? `${cannot.length} objects have another authz id in SQL than in CouchDB, which cannot be written back`
      : 'write_back was not asked for';
    throw new OrgRefusal(`${cmp.differences.length} changes made on SQL since the migration would be lost; ${why}`, { differences: cmp.differences });
  }
}

/** With writeBack: CouchDB made to say what SQL says, in the legacy shape, then compared again; a difference left is this org's data. */
export async function writeBack(ctx: Context, org: OrgDelivery) {
  const f = found.get(org);
  if (!f?.cmp.differences.length) return;
  try {
    f.writtenBack = await writeToCouch(ctx, { name: org.orgName, guid: org.orgId }, f.cmp);
  } catch (err) {
    if (err instanceof WriteBackConflict) {
      couchConflicts.inc({ migration_type: type, op: 'write_back' }, err.docIds.length);
      for (const id of err.docIds) org.log.warn({ doc_id: id }, 'document changed in CouchDB since it was compared (conflict); not overwritten');
    }
    throw err;
  }
  const again = await compareOrg(ctx, org.orgId);
  // E.g. a duplicate name the migration skipped shows up once the kept document is renamed: this org's data, not the fleet's.
  if (again.differences.length)
    throw new OrgDataError(`after writing back, ${again.differences.length} differences remain between SQL and CouchDB`, { differences: again.differences });
  org.log.info({ written_back: f.writtenBack, differences: f.cmp.differences.length }, 'changes made on SQL written back to CouchDB');
}

/**
 * The switch back: routed to CouchDB and up in one write (one HSET of
 * dl_org_<org>). From here CouchDB holds everything and Chef may serve the
 * org from there: it is never moved back to SQL.
 */
export async function routeToCouchdb(_ctx: Context, org: OrgDelivery) {
  await flagsOf(org).routeBackToCouch();
  org.darkUntil = Date.now();
}

/** The org's line in mover.revert_results, written with its last state change; reverted, its SQL rows go with it. */
async function record(_ctx: Context, org: OrgDelivery, q: DbClient, end: OrgEnd) {
  const { runId, orgName } = org;
  if (end.outcome === 'done') {
    await deleteOwnedOrgObjects(q, PHASE_2_MIGRATION, org.orgId);
    // A reconciler finishing a lost delivery's revert did not see its comparison.
    const f = found.get(org);
    await reverts.recordResult(q, { runId, orgName, outcome: 'reverted', writtenBack: f?.writtenBack ?? 0, differences: f?.cmp.differences ?? [] });
    return;
  }
  const differences = (end.found?.differences as Difference[] | undefined) ?? [];
  await reverts.recordResult(q, { runId, orgName, outcome: end.outcome, differences, detail: end.detail });
}

/** The steps, in the per-org frame's terms (src/frame/org-job.ts). */
export const revert: OrgMigration = {
  type,
  orgType: PHASE_2_MIGRATION,
  path: { from: 'completed', done: 'ready', failed: 'completed' },
  run: {
    // Unpaced: the drain wait inside each job is its pacing.
    paced: false,
    // Its targets are completed orgs, named or counted; an org it takes is marked by its claim, not before.
    markInRun: undefined,
    async selectTargets(ctx, req, page) {
      const targets = await reverts.completedOrgs(ctx.db, req.orgs ?? null, page.size, page.after);
      return { targets, last: targets.at(-1)?.guid ?? null };
    },
    report: async (ctx, run) => ({
      write_back: run.params.write_back === true || run.params.writeBack === true,
      not_reverted: await reverts.unrevertedInRun(ctx.db, run.id),
    }),
  },
  preflight,
  steps: [
    // Recorded by the claim itself. Dark while it is compared and moved, so no request sees half of it.
    { name: 'set_503', run: set503 },
    { name: 'drain_wait', run: drainWait },
    { name: 'compare', run: compare },
    { name: 'write_back', run: writeBack },
    // Once the switch back may have been written, the org is never moved back to SQL: the next delivery or the reconciler finishes it.
    { name: 'route_to_couchdb', run: routeToCouchdb, checkpoint: true },
  ],
  committedFrom: 'route_to_couchdb',
  // Not reverted: it stays completed, so it must stay served from SQL, and come up.
  restoreOutside: (_ctx, org) => flagsOf(org).routeToSqlAndUp(),
  // Its SQL rows stay: they are where Chef serves it from.
  restore: async () => {},
  record,
};

export const kind = perOrgKind(revert);
