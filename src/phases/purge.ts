// Phase 4 (the runbook left cleanup open; this is our answer): for each
// completed org, re-verify SQL against CouchDB, then remove the migrated
// container and group documents from its CouchDB database. An org can only be
// purged from 'completed' (completed → purge_started is conditional), and only
// after verifying in the same pass; one that does not verify goes back to
// 'completed' and is reported. Works a batch per driver tick, resumably.
import type { Context } from '../context.js';
import { OBJECT_TABLES } from '../db/org-objects.js';
import { errorMessage, isDataError } from '../errors.js';
import { verifyAgainstCouch, type Verification } from '../migration/verify.js';
import { moveOrg } from '../db/state-tracker.js';
import { purgeCandidates } from '../db/org-states.js';
import { orgDatabaseName, type CouchDoc } from '../stores/couch-docs.js';
import type { StepAction } from './types.js';

const T = 'phase_2_migration';
const BATCH = 50;
const REPORT_MAX = 200;

interface Verified {
  ok: boolean;
  reason?: string;
  docs: CouchDoc[];
}

/** SQL equals what CouchDB holds for the org; `resuming` accepts SQL rows whose documents an earlier pass already purged. */
async function verify(ctx: Context, orgId: string, resuming: boolean): Promise<Verified> {
  let v: Verification & { docs: CouchDoc[] };
  try {
    v = await verifyAgainstCouch(ctx, orgId);
  } catch (err) {
    if (isDataError(err)) return { ok: false, reason: errorMessage(err), docs: [] };
    throw err;
  }
  const { diff, sql, docs } = v;
  const problems = OBJECT_TABLES.flatMap((t) => [
    ...diff[t].missing.map((id) => `${t} ${id} is in CouchDB but not in SQL`),
    ...diff[t].different.map((id) => `${t} ${id} differs between CouchDB and SQL`),
    // Resuming, SQL rows whose documents an earlier pass purged are expected.
    ...(resuming ? [] : diff[t].extra.map((id) => `${t} ${id} is in SQL but not in CouchDB`)),
  ]);
  if (problems.length) return { ok: false, reason: problems[0] + (problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''), docs };
  const inSql = new Set(OBJECT_TABLES.flatMap((t) => sql[t].map((r) => r.id)));
  return { ok: true, docs: docs.filter((d) => inSql.has(d._id)) };
}

export const purgeCompletedOrgs: StepAction = async (ctx, phase, step) => {
  const dryRun = phase.params.dryRun === true;
  const d = step.detail as {
    cursor?: string;
    purged?: number;
    docs_removed?: number;
    would_purge?: number;
    would_remove_docs?: number;
    unverified?: { org: string; reason: string }[];
  };
  const detail = {
    dry_run: dryRun,
    purged: d.purged ?? 0,
    docs_removed: d.docs_removed ?? 0,
    would_purge: d.would_purge ?? 0,
    would_remove_docs: d.would_remove_docs ?? 0,
    unverified: d.unverified ?? [],
    cursor: d.cursor ?? '',
  };
  const rows = await purgeCandidates(ctx.db, T, detail.cursor, BATCH);
  if (!rows.length) return { state: 'done', detail: { ...detail, unverified_count: detail.unverified.length } };

  for (const org of rows) {
    const log = ctx.log.child({ org_name: org.org_name, migration_type: T, step: '4.1' });
    const resuming = org.state === 'purge_started';
    // Its CouchDB documents are deleted only while Chef serves the org from SQL: one it serves from CouchDB reads and writes them.
    const notOnSql = await ctx.darklaunch.whyNotServedFrom(org.org_name, 'sql');
    if (notOnSql) {
      const reason = `${notOnSql}; its CouchDB documents are live, so they are not purged`;
      log.warn({ reason }, 'org not purged: Chef does not serve it from SQL');
      if (detail.unverified.length < REPORT_MAX) detail.unverified.push({ org: org.org_name, reason });
      if (!dryRun && resuming) await moveOrg(ctx.db, T, org.org_id, 'purge_started', 'completed');
      continue;
    }
    if (!dryRun && !resuming) {
      if (!(await moveOrg(ctx.db, T, org.org_id, 'completed', 'purge_started'))) continue; // moved on meanwhile (reverted): not ours to purge
    }
    const v = await verify(ctx, org.org_id, resuming);
    if (!v.ok) {
      log.warn({ reason: v.reason }, 'org did not verify; not purged');
      if (detail.unverified.length < REPORT_MAX) detail.unverified.push({ org: org.org_name, reason: v.reason ?? 'mismatch' });
      if (!dryRun) await moveOrg(ctx.db, T, org.org_id, 'purge_started', 'completed');
      continue;
    }
    if (dryRun) {
      detail.would_purge++;
      detail.would_remove_docs += v.docs.length;
      continue;
    }
    const notDeleted = v.docs.length
      ? await ctx.couch.bulkDelete(
          orgDatabaseName(org.org_id),
          v.docs.map((x) => ({ _id: x._id, _rev: x._rev! })),
        )
      : [];
    if (notDeleted.length) throw new Error(`could not delete ${notDeleted.length} documents of ${org.org_name}; it stays purge_started and is retried`);
    await moveOrg(ctx.db, T, org.org_id, 'purge_started', 'purge_successful');
    detail.purged++;
    detail.docs_removed += v.docs.length;
    log.info({ docs_removed: v.docs.length }, 'org purged from CouchDB');
  }
  detail.cursor = rows[rows.length - 1].org_id;
  return { state: 'running', detail };
};
