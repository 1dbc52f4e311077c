import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { isMigrationType } from '../queues.js';

/**
 * Halts a run fleet-wide: the run leaves 'working' (so no worker anywhere can
 * start another of its orgs: the claim checks it) and its waiting jobs are
 * drained. Orgs already started finish; delayed jobs (orgs in their drain
 * wait) are kept, since those orgs are already dark and must be finished.
 */
export async function haltFleet(ctx: Context, type: string, runId: string, reason: string, fatal: boolean): Promise<boolean> {
  const halted = await runs.haltRun(ctx.db, runId, reason, fatal);
  if (!halted && fatal) await runs.markFatal(ctx.db, runId, reason);
  if (halted) ctx.log.warn({ migration_type: type, run_id: runId, fatal_stop: fatal, reason }, 'run halting');
  if (isMigrationType(type)) await ctx.queues[type].drain(false).catch((err) => ctx.log.error({ err: err.message }, 'queue drain failed'));
  await runs.finishRunIfDone(ctx.db, runId);
  return halted;
}
