import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { errorMessage } from '../errors.js';

/**
 * Halts a run fleet-wide: the run leaves 'working' (so no worker anywhere can
 * start another of its orgs: the claim checks it) and its waiting jobs are
 * drained. Orgs already started finish; delayed jobs (orgs waiting for a
 * place in the concurrency) are kept and skip themselves when they run.
 */
export async function haltFleet(ctx: Context, type: string, runId: string, reason: string, fatal: boolean): Promise<boolean> {
  const halted = await runs.haltRun(ctx.db, runId, reason, fatal);
  if (!halted && fatal) await runs.markFatal(ctx.db, runId, reason);
  if (halted) ctx.log.warn({ migration_type: type, run_id: runId, fatal_stop: fatal, reason }, 'run halting');
  const queue = ctx.queues[type];
  if (queue) {
    // Not fatal to the halt: the run row already stops every claim; jobs left waiting skip themselves.
    await queue
      .drain(false)
      .catch((err) => ctx.log.error({ migration_type: type, run_id: runId, err: errorMessage(err) }, 'queue drain failed; waiting jobs will skip themselves'));
  }
  await runs.finishRunIfDone(ctx.db, runId);
  return halted;
}
