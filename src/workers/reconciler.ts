// The reconciler: BullMQ can lose track of a job (a worker killed past
// maxStalledCount, a job removed by hand, a restore that failed while a store
// was down). Each kind says how it finds and resolves its work whose job is
// gone (JobKind.reconcile); this pass calls every kind's and ends runs that
// have nothing left to wait for.
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { JOB_KINDS } from '../jobs/index.js';
import type { JobState } from '../frame/kind.js';
import { claimChore, repairStateCounts, resyncStateMirror } from '../db/maintenance.js';
import { errorMessage } from '../errors.js';

/**
 * How often the fleet catches the state mirror up with hand edits of Chef's
 * table (one scan when nothing differs: 0.8 s of Postgres at a million
 * orgs, bench:reads; the counters' check 0.2 s). One process in the fleet does it each time (claimChore).
 */
const RESYNC_EVERY_MS = 5 * 60_000;

async function resyncMirror(ctx: Context): Promise<void> {
  if (!(await claimChore(ctx.db, 'state-mirror-resync', RESYNC_EVERY_MS))) return;
  try {
    const fixed = await resyncStateMirror(ctx.db);
    if (fixed) ctx.log.warn({ orgs: fixed }, 'org states changed outside mover (by hand?); the state mirror caught up');
    const counters = await repairStateCounts(ctx.db);
    if (counters) ctx.log.warn({ counter_rows: counters }, 'the counts of orgs by state had drifted from the orgs (a TRUNCATE, triggers disabled?); rebuilt');
  } catch (err) {
    // Not this pass's business to fail for: the orgs are reconciled all the same, and the resync is due again in 5 minutes.
    ctx.log.error({ err: errorMessage(err) }, 'could not resync the state mirror; it is tried again at the next interval');
  }
}

/** A run still queueing whose starter has not queued a page for this long (by the database's clock) is taken to have lost its starter. */
const STARTER_GONE_MS = 5 * 60_000;

/** A run this young may still be enqueueing its jobs: never ended for want of them. */
const EMPTY_RUN_GRACE_MS = 30_000;

export async function reconcileOnce(ctx: Context): Promise<{ resolved: string[] }> {
  const resolved: string[] = [];
  await resyncMirror(ctx);
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
    if (run.enqueueing) {
      // Its starter queues a page every few seconds; one silent this long died part-way (an api restart).
      const stale = await runs.haltStaleEnqueueing(ctx.db, run.id, STARTER_GONE_MS);
      // Still queueing (its starter is alive), unless another process's reconciler halted it just now: then it is ended below, as that one ends it.
      if (!stale && (await runs.getRun(ctx.db, run.id))?.enqueueing !== false) continue;
      if (stale)
        ctx.log.error(
          { run_id: run.id, migration_type: run.migration_type, orgs: stale.enqueued },
          'the process queueing this run stopped part-way; the run halts once the orgs it queued are done (start it again for the rest)',
        );
    }
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
