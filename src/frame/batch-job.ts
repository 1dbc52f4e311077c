// What every kind that works in batches of orgs (the prep pass, the purge, the
// estate survey) does around a batch: a batch of a run that no longer works
// is counted as skipped, once, and the run may end; and when the run's
// infrastructure breaker closes, its batches that failed on the fault are
// delivered again (a batch is safe to run again). docs/architecture.md, "Job kinds".
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import type { BatchJobData } from './kind.js';

/** The batch's run while it works; otherwise null, the batch's orgs counted as skipped (once) and the run ended if that was all. */
export async function workingRunOrSkip(ctx: Context, data: BatchJobData): Promise<runs.RunRow | null> {
  const run = await runs.getRun(ctx.db, data.runId);
  if (run?.state === 'working') return run;
  await runs.countOnce(ctx.db, data.runId, `batch:${data.batch}`, { skipped: data.orgs.length });
  await runs.finishRunIfDone(ctx.db, data.runId);
  return null;
}

/** The run's failed batches queued again (their jobs retried); their names. */
export async function retryFailedBatches(ctx: Context, type: string, runId: string): Promise<string[]> {
  const failed = (await ctx.queues[type].getFailed()).filter((j) => (j.data as BatchJobData).runId === runId);
  for (const j of failed) await j.retry();
  return failed.map((j) => `batch ${(j.data as BatchJobData).batch}`);
}
