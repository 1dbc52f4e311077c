// The reconciler: BullMQ can lose track of an org's job (a worker killed past
// maxStalledCount, a job removed by hand, a restore that failed while a store
// was down). It finds orgs left 'started' with no live job and resolves them
// the safe way: restored (served from CouchDB, not dark) and failed at the
// step they were in, or, once committed to SQL (at clear_503), finished. It
// also ends runs that have nothing left to wait for.
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { clearStaleInFlight, startedOrgs } from '../db/state-tracker.js';
import { tryLock } from '../db/advisory-lock.js';
import { errorMessage } from '../errors.js';
import { ORG_JOB_KINDS } from '../jobs/index.js';
import { orgLogger } from '../log.js';
import { isMigrationType, orgJobId } from '../queues.js';
import { finishCommitted, restoreAndFail } from '../runs/org-job.js';
import * as revert from '../jobs/phase_2_revert.js';

const LIVE = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);

export async function reconcileOnce(ctx: Context): Promise<{ resolved: string[] }> {
  const resolved: string[] = [];
  for (const [type, kind] of Object.entries(ORG_JOB_KINDS)) {
    if (!kind || !isMigrationType(type)) continue;
    for (const name of await clearStaleInFlight(ctx.db, type)) {
      orgLogger(ctx.log, name, type).warn('org was marked in flight but is not started (its state was changed by hand); its place in the concurrency is freed');
    }
    for (const row of await startedOrgs(ctx.db, type)) {
      if (!row.run_id) continue;
      const runId = String(row.run_id);
      const job = await ctx.queues[type].getJob(orgJobId(runId, row.org_id));
      const jobState = job ? await job.getState() : 'missing';
      if (LIVE.has(jobState)) continue;
      const log = orgLogger(ctx.log, row.org_name, type).child({ run_id: runId });
      const step = row.current_step ?? 'unknown';
      const lock = await tryLock(ctx.db, type, row.org_id);
      if (!lock) continue; // a delivery is working on it after all
      try {
        const ref = { type, runId, orgName: row.org_name, orgId: row.org_id, log };
        if (step === kind.committedFrom) {
          // Past the point of no return (it may be served from its new home): finished, never moved back.
          await finishCommitted(kind, ctx, ref);
          log.warn({ step, job_state: jobState }, 'reconciler finished a committed org whose job was gone');
          resolved.push(row.org_name);
        } else if (await restoreAndFail(kind, ctx, ref, step, `job ${jobState}; resolved by the reconciler`)) {
          log.warn({ step, job_state: jobState }, 'reconciler restored a started org whose job was gone and marked it failed');
          resolved.push(row.org_name);
        }
      } catch (err) {
        log.error({ step, err: errorMessage(err) }, 'reconciler could not resolve the org yet; will retry');
      } finally {
        await lock.release();
      }
    }
  }
  const revertQueue = ctx.queues[revert.type];
  resolved.push(...(await revert.restoreLostReverts(ctx, async (id) => LIVE.has((await (await revertQueue.getJob(id))?.getState()) ?? 'missing'))));

  for (const run of await runs.activeRuns(ctx.db)) {
    if (await runs.finishRunIfDone(ctx.db, run.id)) continue;
    // A working run whose jobs are all gone (lost before they claimed their org) would wait forever.
    if (!isMigrationType(run.migration_type) || Date.now() - run.started_at.getTime() < 30_000) continue;
    const counts = await ctx.queues[run.migration_type].getJobCounts('active', 'waiting', 'delayed', 'prioritized');
    const queued = Object.values(counts).reduce((a, b) => a + b, 0);
    if (queued === 0 && (await runs.inProgress(ctx.db, run.id)) === 0) {
      await runs.endRun(ctx.db, run.id);
      ctx.log.warn({ run_id: run.id, migration_type: run.migration_type }, 'run ended by the reconciler: no jobs left in the queue');
    }
  }
  return { resolved };
}
