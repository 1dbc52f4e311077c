// phase_2_purge (phase 4; the runbook left cleanup open, this is our answer):
// for each completed org of phase_2_migration, re-verify SQL against CouchDB,
// then remove the migrated container and group documents from its CouchDB
// database. A run over the completed orgs in org_id order, 50 a job, unpaced,
// started by phase 4's step 4.1 (never directly: it deletes documents, and
// phase 4 takes a confirmation). An org is purged only from 'completed'
// (completed → purge_started is conditional), only while Chef serves it from
// SQL, and only after verifying in the same pass; one that does not goes back
// to 'completed' and is reported. Safe to run again: an org left
// purge_started resumes, accepting SQL rows whose documents it already removed.
import type { Job } from 'bullmq';
import type { Context } from '../context.js';
import { OBJECT_TABLES } from '../migration/types.js';
import { purgeCandidates } from '../db/org-states.js';
import { purgeReport, recordPurge } from '../db/purges.js';
import * as runs from '../db/runs.js';
import { moveOrg, stillHeldIn } from '../db/state-tracker.js';
import { errorMessage, isOrgError, OwnershipLostError } from '../errors.js';
import { takeOrgLeaseWaiting } from '../frame/org-lease.js';
import { couchConflicts } from '../metrics.js';
import { inTransaction } from '../stores/postgres.js';
import { beforeWrite } from '../stores/pause-point.js';
import type { Logger } from 'pino';
import { tripOnFault } from '../frame/breaker.js';
import { retryFailedBatches, workingRunOrSkip } from '../frame/batch-job.js';
import type { BatchJobData, JobKind } from '../frame/kind.js';
import { verifyAgainstCouch, type Verification } from '../migration/verify.js';
import { PHASE_2_MIGRATION as T, PHASE_2_PURGE } from '../queue-names.js';
import { orgDatabaseName, type CouchDoc } from '../stores/couch-docs.js';

export const type = PHASE_2_PURGE;
export const BATCH_SIZE = 50;

/** A purge run's dry_run. */
const isDryRun = (params: Record<string, unknown>) => params.dry_run === true;

export const kind: JobKind = {
  type,
  // Each org is verified (two reads) and its documents deleted: a few batches per process at once.
  slotsPerProcess: 4,
  run: {
    paced: false,
    batchSize: BATCH_SIZE,
    // Each org's routing is checked as it is purged (Chef's rule, per org).
    checksRouting: false,
    onlyFromPhase: 4,
    selectTargets: async (ctx, _req, page) => {
      const rows = await purgeCandidates(ctx.db, T, page.after ?? '', page.size);
      return { targets: rows.map((r) => ({ name: r.org_name, guid: r.org_id })), last: rows.at(-1)?.org_id ?? null };
    },
    report: async (ctx, run) => ({ dry_run: isDryRun(run.params), ...(await purgeReport(ctx.db, run.id)) }),
  },
  process: (ctx, job) => purgeBatch(ctx, job as Job<BatchJobData>),
  retryAfterBreaker: (ctx, runId) => retryFailedBatches(ctx, type, runId),
};

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
    if (isOrgError(err)) return { ok: false, reason: errorMessage(err), docs: [] };
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

/**
 * One org, as it stands now, under its lease (docs/architecture.md,
 * "Fencing"): purged, would be (a dry run), left unverified, or null if it
 * moved on or another holds it. Every SQL write carries the lease token and
 * is refused once it is stale; the CouchDB deletes go by the revisions this
 * pass verified, right after a fenced statement confirmed the lease, so a
 * document changed since is not deleted (a conflict, counted and reported).
 */
async function purgeOrg(
  ctx: Context,
  runId: string,
  org: { name: string; guid: string },
  dryRun: boolean,
): Promise<'unverified' | 'purged' | 'would_purge' | null> {
  const log = ctx.log.child({ org_name: org.name, migration_type: T, run_id: runId });
  // Another pass of this org (a batch delivered twice) may hold it: its lease is waited for, up to its length.
  const taken = await takeOrgLeaseWaiting(ctx, T, org.guid, org.name);
  if (!taken) {
    log.warn('another pass holds this org; left for it');
    return null;
  }
  try {
    return await purgeHeld(ctx, runId, org, dryRun, taken.lease.token, taken.org?.state, log);
  } catch (err) {
    if (!(err instanceof OwnershipLostError)) throw err;
    log.warn({ err: err.message }, 'the org lease was lost (this pass paused past it); the org is left to whoever holds it now');
    return null;
  } finally {
    await taken.lease.release();
  }
}

async function purgeHeld(
  ctx: Context,
  runId: string,
  org: { name: string; guid: string },
  dryRun: boolean,
  leaseToken: string,
  state: string | undefined,
  log: Logger,
): Promise<'unverified' | 'purged' | 'would_purge' | null> {
  if (state !== 'completed' && state !== 'purge_started') return null; // moved on (reverted meanwhile): not ours to purge
  const resuming = state === 'purge_started';
  const result = { runId, orgName: org.name, orgId: org.guid, leaseToken };
  const unverified = async (reason: string, back = resuming) => {
    if (!dryRun && back) await moveOrg(ctx.db, T, org.guid, leaseToken, 'purge_started', 'completed');
    await recordPurge(ctx.db, { ...result, outcome: 'unverified', detail: reason });
    return 'unverified' as const;
  };
  // Its CouchDB documents are deleted only while Chef serves the org from SQL: one it serves from CouchDB reads and writes them.
  const notOnSql = await ctx.darklaunch.whyNotServedFrom(org.name, 'sql');
  if (notOnSql) {
    const reason = `${notOnSql}; its CouchDB documents are live, so they are not purged`;
    log.warn({ reason }, 'org not purged: Chef does not serve it from SQL');
    return unverified(reason);
  }
  if (!dryRun && !resuming && !(await moveOrg(ctx.db, T, org.guid, leaseToken, 'completed', 'purge_started'))) return null;
  const v = await verify(ctx, org.guid, resuming);
  if (!v.ok) {
    log.warn({ reason: v.reason }, 'org did not verify; not purged');
    return unverified(v.reason ?? 'mismatch', !dryRun);
  }
  if (dryRun) {
    await recordPurge(ctx.db, { ...result, outcome: 'would_purge', docs: v.docs.length });
    return 'would_purge';
  }
  // The last word before CouchDB, which knows no lease: still purge_started and this pass's.
  if (!(await stillHeldIn(ctx.db, T, org.guid, leaseToken, 'purge_started'))) return null;
  await beforeWrite('purge_delete', { orgId: org.guid, orgName: org.name });
  const refused = v.docs.length
    ? await ctx.couch.bulkDelete(
        orgDatabaseName(org.guid),
        v.docs.map((x) => ({ _id: x._id, _rev: x._rev! })),
      )
    : [];
  const conflicts = refused.filter((r) => r.error === 'conflict');
  if (conflicts.length < refused.length)
    throw new Error(`could not delete ${refused.length - conflicts.length} documents of ${org.name}; it stays purge_started and is retried`);
  if (conflicts.length) {
    couchConflicts.inc({ migration_type: type, op: 'purge_delete' }, conflicts.length);
    for (const c of conflicts) log.warn({ doc_id: c.id }, 'document changed in CouchDB since it was verified (conflict); not deleted');
    const reason = `${conflicts.length} documents changed in CouchDB since they were verified (conflict: ${conflicts
      .slice(0, 5)
      .map((c) => c.id)
      .join(', ')}); they were not deleted, the org stays purge_started and the next purge resumes it`;
    await recordPurge(ctx.db, { ...result, outcome: 'unverified', detail: reason });
    return 'unverified';
  }
  await inTransaction(ctx.db, async (c) => {
    await moveOrg(c, T, org.guid, leaseToken, 'purge_started', 'purge_successful');
    await recordPurge(c, { ...result, outcome: 'purged', docs: v.docs.length });
  });
  log.info({ docs_removed: v.docs.length }, 'org purged from CouchDB');
  return 'purged';
}

async function purgeBatch(ctx: Context, job: Job<BatchJobData>): Promise<{ purged: number; unverified: number; skipped?: boolean }> {
  const { runId, orgs, batch } = job.data;
  const log = ctx.log.child({ migration_type: type, run_id: runId, batch });
  const run = await workingRunOrSkip(ctx, job.data);
  if (!run) return { purged: 0, unverified: 0, skipped: true };
  const dryRun = isDryRun(run.params);
  const tally = { purged: 0, unverified: 0 };
  try {
    for (const org of orgs) {
      const outcome = await purgeOrg(ctx, runId, org, dryRun);
      if (outcome === 'unverified') tally.unverified++;
      else if (outcome) tally.purged++;
    }
  } catch (err) {
    // A store away, or CouchDB refusing a delete: the batch is safe to run again (each org resumes), so the breaker queues it again once the stores answer.
    log.error({ err: errorMessage(err) }, 'purge batch failed; the purge run pauses');
    await tripOnFault(ctx, log, type, runId, `purge batch ${batch}: ${errorMessage(err)}`);
    throw err;
  }
  if (!(await runs.countOnce(ctx.db, runId, `batch:${batch}`, { finished: orgs.length, failed: tally.unverified })))
    log.warn('batch delivered again; its orgs were counted the first time');
  await runs.finishRunIfDone(ctx.db, runId);
  log.info(tally, 'purge batch done');
  return tally;
}
