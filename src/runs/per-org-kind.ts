// A per-org migration (src/runs/org-job.ts) as a job kind: its targets are
// the migration type's ready orgs in org_id order (legacy next_ready_org), one
// job per org, paced by the sleep time, run in the per-org frame, and its lost
// jobs resolved by reconcileStarted. A new migration type is one definition
// of steps passed through here (src/jobs/phase_2_migration.ts is one).
import type { Job } from 'bullmq';
import type { Context } from '../context.js';
import { readyOrgs, startedOrgs } from '../db/org-states.js';
import { tryLock } from '../db/advisory-lock.js';
import { errorMessage } from '../errors.js';
import { isLive, orgJobId, type JobKind, type JobState, type OrgJobData } from '../jobs/kind.js';
import { orgLogger } from '../log.js';
import { finishCommitted, runOrgJob, type OrgMigration } from './org-job.js';
import { restoreAndFail } from './org-restore.js';

export function perOrgKind(def: OrgMigration): JobKind {
  return {
    type: def.type,
    run: {
      paced: true,
      batchSize: 1,
      checksRouting: true,
      selectTargets: async (ctx, req) => ({ targets: await readyOrgs(ctx.db, def.type, req.count === 'all' ? null : req.count) }),
    },
    process: (ctx, job, token) => runOrgJob(def, ctx, job as Job<OrgJobData>, token),
    reconcile: (ctx, jobState) => reconcileStarted(def, ctx, jobState),
  };
}

/**
 * Orgs left 'started' with no live job: restored (served from where they
 * were, not dark) and failed at the step they were in, or, once committed,
 * finished. Each under the org's lock, so a delivery that is running after
 * all is never raced.
 */
async function reconcileStarted(def: OrgMigration, ctx: Context, jobState: (jobId: string) => Promise<JobState>): Promise<string[]> {
  const resolved: string[] = [];
  for (const row of await startedOrgs(ctx.db, def.type)) {
    if (!row.run_id) continue;
    const runId = row.run_id;
    const state = await jobState(orgJobId(runId, row.org_id));
    if (isLive(state)) continue;
    const log = orgLogger(ctx.log, row.org_name, def.type).child({ run_id: runId });
    const step = row.current_step ?? 'unknown';
    const lock = await tryLock(ctx.db, def.type, row.org_id);
    if (!lock) continue; // a delivery is working on it after all
    try {
      const org = { type: def.type, runId, orgName: row.org_name, orgId: row.org_id, log };
      if (step === def.committedFrom) {
        // Past the point of no return (it may be served from its new home): finished, never moved back.
        await finishCommitted(def, ctx, org);
        log.warn({ step, job_state: state }, 'reconciler finished a committed org whose job was gone');
        resolved.push(row.org_name);
      } else if (await restoreAndFail(def, ctx, org, step, `job ${state}; resolved by the reconciler`)) {
        log.warn({ step, job_state: state }, 'reconciler restored a started org whose job was gone and marked it failed');
        resolved.push(row.org_name);
      }
    } catch (err) {
      log.error({ step, err: errorMessage(err) }, 'reconciler could not resolve the org yet; will retry');
    } finally {
      await lock.release();
    }
  }
  return resolved;
}
