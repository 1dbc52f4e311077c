// The reconciler: BullMQ can lose track of a job (a worker killed past
// maxStalledCount, a job removed by hand, a restore that failed while a store
// was down). Each kind says how it finds and resolves its work whose job is
// gone (JobKind.reconcile); this pass calls every kind's and ends runs that
// have nothing left to wait for.
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { JOB_KINDS } from '../jobs/index.js';
import type { JobState } from '../jobs/kind.js';

/** A run this young may still be enqueueing its jobs: never ended for want of them. */
const EMPTY_RUN_GRACE_MS = 30_000;

export async function reconcileOnce(ctx: Context): Promise<{ resolved: string[] }> {
  const resolved: string[] = [];
  for (const kind of Object.values(JOB_KINDS)) {
    if (!kind.reconcile) continue;
    const queue = ctx.queues[kind.type];
    const jobState = async (jobId: string): Promise<JobState> => {
      const state = await queue.getJobState(jobId);
      return state === 'unknown' ? 'missing' : state;
    };
    resolved.push(...(await kind.reconcile(ctx, jobState)));
  }

  for (const run of await runs.activeRuns(ctx.db)) {
    if (await runs.finishRunIfDone(ctx.db, run.id)) continue;
    // A working run whose jobs are all gone (lost before they claimed their org) would wait forever.
    const queue = ctx.queues[run.migration_type];
    if (!queue || run.breaker !== 'closed' || Date.now() - run.started_at.getTime() < EMPTY_RUN_GRACE_MS) continue;
    const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
    const queued = Object.values(counts).reduce((a, b) => a + b, 0);
    if (queued === 0 && (await runs.inFlightCount(ctx.db, run.id)) === 0) {
      await runs.endRun(ctx.db, run.id);
      ctx.log.warn({ run_id: run.id, migration_type: run.migration_type }, 'run ended by the reconciler: no jobs left in the queue');
    }
  }
  return { resolved };
}
