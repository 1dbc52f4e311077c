// A phase step whose work is a job kind's (a migration, the prep pass, the
// purge, the account refresh) starts it and waits for it to end without
// holding the driver: each tick only polls. The run's (or job's) id is kept
// in the step's detail, and one started just before a crash is adopted, so a
// restarted fleet never starts the same work twice, and the driver never
// holds a connection (its phase lock's) across a long call.
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import type { StepRow } from '../db/phases.js';
import { errorMessage, NoOrgsError } from '../errors.js';
import { queueRefresh, type RefreshResult } from '../jobs/account_refresh.js';
import { kindOf, startRun } from '../runs/manager.js';
import type { ExpectedDefault } from '../runs/routing-preflight.js';
import { ACCOUNT_REFRESH } from '../queue-names.js';
import type { StepResult } from './types.js';

/** Starts (or adopts) a run of `type` over all its orgs, then reports its progress each tick until it ends; the kind's report goes in the step's detail. */
export async function runAndWait(
  ctx: Context,
  step: StepRow,
  type: string,
  concurrency: number,
  expect: ExpectedDefault = 'any',
  params?: Record<string, unknown>,
): Promise<StepResult> {
  let runId = step.detail.run_id as string | undefined;
  if (!runId) {
    const latest = await runs.latestRun(ctx.db, type);
    if (latest && step.started_at && latest.started_at >= step.started_at)
      runId = latest.id; // started before a restart
    else if (latest && latest.state !== 'ready')
      return { state: 'failed', detail: { error: `another ${type} run (${latest.id}) is active; halt it or wait, then start the phase again` } };
    else {
      try {
        runId = (await startRun(ctx, type, { count: 'all', concurrency, expectRouting: expect, params })).run.id;
      } catch (err) {
        // Nothing to do is this step done, not a run of no orgs that would hide the real one.
        if (err instanceof NoOrgsError) return { state: 'done', detail: { orgs_in_run: 0, orgs_finished: 0, orgs_failed: 0, note: err.message } };
        throw err;
      }
    }
    return { state: 'running', detail: { run_id: runId, migration_type: type, concurrency } };
  }
  const run = await runs.getRun(ctx.db, runId);
  if (!run) return { state: 'failed', detail: { error: `run ${runId} is gone` } };
  const counts = {
    orgs_finished: run.orgs_finished,
    orgs_failed: run.orgs_failed,
    orgs_completed: run.orgs_finished - run.orgs_failed,
    orgs_in_run: run.enqueued,
  };
  if (run.state !== 'ready') {
    const breaker = run.breaker === 'closed' ? null : { state: run.breaker, kind: run.breaker_kind, reason: run.breaker_reason, since: run.breaker_since };
    return { state: 'running', detail: { ...counts, breaker } };
  }
  const kind = kindOf(type).run;
  const reported = kind.report ? await kind.report(ctx, run) : {};
  if (run.fatal_stop || run.stop_reason)
    return { state: 'halted', detail: { ...counts, ...reported, stop_reason: run.stop_reason, fatal_stop: run.fatal_stop } };
  return { state: 'done', detail: { ...counts, ...reported } };
}

/**
 * Queues an account refresh (or joins the one queued or running) and
 * reports it each tick until it ends. A refresh job lost from the queue
 * (Redis lost it, or it was removed) is queued again.
 */
export async function refreshAndWait(ctx: Context, step: StepRow): Promise<StepResult> {
  const queue = ctx.queues[ACCOUNT_REFRESH];
  const jobId = step.detail.job_id as string | undefined;
  const job = jobId ? await queue.getJob(jobId) : undefined;
  if (!job) {
    const queued = await queueRefresh(queue);
    if (jobId) ctx.log.warn({ job_id: jobId, step: step.id }, 'account refresh job is gone from the queue; queued again');
    return { state: 'running', detail: { job_id: String(queued.id) } };
  }
  const state = await job.getState();
  if (state === 'completed' || state === 'failed') {
    // Read again: the job was read before its state, and may have ended in between, its result not in that first read.
    const ended = (await queue.getJob(job.id!)) ?? job;
    if (state === 'failed') return { state: 'failed', detail: { job_id: jobId, error: ended.failedReason ?? errorMessage(ended.stacktrace?.at(-1)) } };
    const r = ended.returnvalue as RefreshResult | null;
    if (!r) return { state: 'running', detail: { job_id: jobId, job_state: state } };
    return { state: 'done', detail: { job_id: jobId, snapshot_id: r.snapshotId, orgs: r.orgs, authz_joins: r.authzJoins, skipped_docs: r.skippedDocs } };
  }
  return { state: 'running', detail: { job_id: jobId, job_state: state } };
}
