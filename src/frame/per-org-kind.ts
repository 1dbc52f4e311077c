// A per-org migration (src/frame/org-job.ts) as a job kind: by default its
// targets are the migration type's ready orgs in org_id order (legacy
// next_ready_org), one job per org, paced by the sleep time; it runs in the
// per-org frame, and its lost jobs are resolved by reconcileStarted. A new
// kind is one definition of steps passed through here: phase_2_migration, and
// phase_2_revert, whose path starts at completed and whose runs take named
// orgs unpaced (its own `run`).
import type { Job } from 'bullmq';
import type { Context } from '../context.js';
import { readyInRun, readyOrgs, requeuedInWorkingRuns, unheldStartedOrgs } from '../db/org-states.js';
import { activeRuns, getRun } from '../db/runs.js';
import * as tracker from '../db/state-tracker.js';
import { MIGRATION_PATH } from '../db/state-tracker.js';
import { inTransaction } from '../stores/postgres.js';
import { errorMessage, OwnershipLostError } from '../errors.js';
import { addOrgJobs, isLive, orgJobId, type JobKind, type JobState, type OrgJobData, type RunSpec } from './kind.js';
import { orgLogger } from '../log.js';
import { finishCommitted, runOrgJob, type OrgMigration, type OrgDelivery } from './org-job.js';
import { holdOrg, fencedOrg } from './held-org.js';
import { restoreAndRecordFailure } from './org-restore.js';
import { takeOrgLease } from './org-lease.js';

export function perOrgKind(def: OrgMigration): JobKind {
  const orgType = def.orgType ?? def.type;
  const path = def.path ?? MIGRATION_PATH;
  const run: RunSpec = {
    paced: true,
    batchSize: 1,
    checksRouting: true,
    selectTargets: async (ctx, req, page) => {
      const targets = await readyOrgs(ctx.db, orgType, page.size, page.after, req.orgs ?? null);
      return { targets, last: targets.at(-1)?.guid ?? null };
    },
    markInRun: (q, runId, targets) => tracker.markInRun(q, orgType, runId, targets),
    ownsOrgs: orgType === def.type,
    ...def.run,
  };
  return {
    type: def.type,
    run,
    process: (ctx, job, token) => runOrgJob(def, ctx, job as Job<OrgJobData>, token),
    async reconcile(ctx, jobState) {
      // Only the per-org frame marks orgs in flight: a mark an operator's forced state left behind frees its place.
      for (const name of await tracker.clearStaleInFlight(ctx.db, orgType)) {
        orgLogger(ctx.log, name, def.type).warn(
          'org was marked in flight but is not started (its state was changed by hand); its place in the concurrency is freed',
        );
      }
      // Lost before any claim: only a kind whose runs mark the orgs they take (taken) can tell.
      const lost = run.markInRun ? await queueLost(def, ctx) : [];
      return [...(await reconcileStarted(def, ctx, jobState)), ...(await queueRequeued(def, ctx, jobState)), ...lost];
    },
    // Failures rest in 'failed' only for a migration: a revert's go back to completed, and are started again by starting the revert again.
    retryAfterBreaker:
      path.failed === 'failed'
        ? async (ctx, runId) => {
            const orgs = await tracker.retryInfrastructureFailures(ctx.db, orgType, runId);
            await addOrgJobs(ctx.queues[def.type], runId, orgs);
            return orgs.map((o) => o.org_name);
          }
        : undefined,
  };
}

/**
 * Orgs left 'started' with no live job (Redis lost its last writes, a job
 * removed by hand, a worker killed past the stall limit): restored (served
 * from where they were, not dark) and, while their run works, put back to
 * ready and queued again in it; failed at their step only when that cannot
 * be (the run halted, or the org was requeued MAX_REQUEUES times). Once
 * committed, finished instead. Each under the org's lease, so a delivery that
 * is running after all is never raced.
 */
async function reconcileStarted(def: OrgMigration, ctx: Context, jobState: (jobId: string) => Promise<JobState>): Promise<string[]> {
  const resolved: string[] = [];
  for (const row of await unheldStartedOrgs(ctx.db, def.orgType ?? def.type, def.type)) {
    if (!row.run_id) continue;
    const runId = row.run_id;
    const state = await jobState(orgJobId(runId, row.org_id));
    if (isLive(state)) continue;
    const log = orgLogger(ctx.log, row.org_name, def.type).child({ run_id: runId });
    const taken = await takeOrgLease(ctx, def.orgType ?? def.type, row.org_id, row.org_name);
    if (!taken) continue; // a delivery is working on it after all
    try {
      // As it is now, under the lease: a delivery may have moved it since the list was read.
      if (taken.org?.state !== 'started' || taken.org.run_id !== runId) continue;
      const step = taken.org.current_step ?? 'unknown';
      const org: OrgDelivery = { type: def.type, orgType: def.orgType ?? def.type, runId, orgName: row.org_name, orgId: row.org_id, log };
      // Held at the generation it finds the org at: every write below is fenced by it and the lease, as a delivery's are.
      holdOrg(ctx, org, taken.lease, taken.org.requeues);
      if (step === def.committedFrom) {
        // Past the point of no return (it may be served from its new home): finished, never moved back.
        await finishCommitted(def, ctx, org);
        log.warn({ step, job_state: state }, 'reconciler finished a committed org whose job was gone');
        resolved.push(row.org_name);
      } else if ((await getRun(ctx.db, runId))?.state === 'working' && (await restoreAndRequeue(def, ctx, org))) {
        await addOrgJobs(ctx.queues[def.type], runId, [row]);
        log.warn({ step, job_state: state }, 'reconciler restored a started org whose job was gone and queued it again in its run');
        resolved.push(row.org_name);
      } else {
        await restoreAndRecordFailure(def, ctx, org, step, `job ${state}; resolved by the reconciler`, 'infrastructure');
        log.warn({ step, job_state: state }, 'reconciler restored a started org whose job was gone and marked it failed');
        resolved.push(row.org_name);
      }
    } catch (err) {
      if (err instanceof OwnershipLostError) log.warn({ err: err.message }, 'reconciler stood aside: the org moved on, or another holds it now');
      else log.error({ step: taken.org?.current_step, err: errorMessage(err) }, 'reconciler could not resolve the org yet; will retry');
    } finally {
      await taken.lease.release();
    }
  }
  return resolved;
}

/** Restored as a failure would restore it, then started → where its path starts (ready, or completed) in its run, in one fenced transaction; false if it cannot be requeued. */
function restoreAndRequeue(def: OrgMigration, ctx: Context, org: OrgDelivery): Promise<boolean> {
  return inTransaction(ctx.db, async (c) => {
    await tracker.holdStartedOrg(c, fencedOrg(org));
    if (!(await tracker.requeueOrg(c, fencedOrg(org), (def.path ?? MIGRATION_PATH).from))) return false;
    if (def.restoreOutside) await def.restoreOutside(ctx, org);
    await def.restore(ctx, org, c);
    return true;
  });
}

/** Orgs put back to ready in a working run whose job is not there (its queueing failed, or Redis lost it): queued again. */
async function queueRequeued(def: OrgMigration, ctx: Context, jobState: (jobId: string) => Promise<JobState>): Promise<string[]> {
  const queued: string[] = [];
  for (const row of await requeuedInWorkingRuns(ctx.db, def.orgType ?? def.type, def.type, (def.path ?? MIGRATION_PATH).from)) {
    if (isLive(await jobState(orgJobId(row.run_id, row.org_id)))) continue;
    await addOrgJobs(ctx.queues[def.type], row.run_id, [row]);
    orgLogger(ctx.log, row.org_name, def.type).warn({ run_id: row.run_id }, 'org ready again in its run had no job; queued it');
    queued.push(row.org_name);
  }
  return queued;
}

/**
 * A working run whose queue holds nothing for it and has nothing in flight,
 * yet has orgs it took still ready: their jobs were lost before any worker
 * claimed them (Redis lost its last writes). They are queued again.
 */
const LOST_JOB_GRACE_MS = 15_000;

async function queueLost(def: OrgMigration, ctx: Context): Promise<string[]> {
  const queued: string[] = [];
  for (const run of await activeRuns(ctx.db)) {
    // A young run may still be queueing its jobs.
    if (
      run.migration_type !== def.type ||
      run.state !== 'working' ||
      run.breaker !== 'closed' ||
      run.enqueueing ||
      Date.now() - run.started_at.getTime() < LOST_JOB_GRACE_MS
    )
      continue;
    const counts = await ctx.queues[def.type].getJobCounts('active', 'waiting', 'delayed', 'prioritized');
    if (Object.values(counts).some((n) => n > 0)) continue;
    const lost = await readyInRun(ctx.db, def.orgType ?? def.type, run.id);
    if (!lost.length) continue;
    await addOrgJobs(ctx.queues[def.type], run.id, lost);
    ctx.log.warn(
      { migration_type: def.type, run_id: run.id, orgs: lost.length, first: lost[0].org_name },
      'orgs of a working run had no job left in the queue; queued them again',
    );
    queued.push(...lost.map((o) => o.org_name));
  }
  return queued;
}
