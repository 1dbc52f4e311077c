// A phase step that runs a migration (or prep) and waits for it to end,
// without holding the driver: each tick polls the run. The run id is kept in
// the step's detail, and a run started just before a crash is adopted, so a
// restarted fleet never starts the same run twice.
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import type { StepRow } from '../db/phases.js';
import type { MigrationType } from '../queues.js';
import { startRun } from '../runs/manager.js';
import type { ExpectedDefault } from '../runs/routing-preflight.js';
import type { StepResult } from './types.js';

export async function runAndWait(ctx: Context, step: StepRow, type: MigrationType, concurrency: number, expect: ExpectedDefault = 'any'): Promise<StepResult> {
  let runId = step.detail.runId as string | undefined;
  if (!runId) {
    const latest = await runs.latestRun(ctx.db, type);
    if (latest && step.started_at && latest.started_at >= step.started_at) runId = latest.id; // started before a restart
    else if (latest && latest.state !== 'ready') return { state: 'failed', detail: { error: `another ${type} run (${latest.id}) is active; halt it or wait, then start the phase again` } };
    else runId = (await startRun(ctx, type, 'all', concurrency, expect)).id;
    return { state: 'running', detail: { runId, migrationType: type, concurrency } };
  }
  const run = await runs.getRun(ctx.db, runId);
  if (!run) return { state: 'failed', detail: { error: `run ${runId} is gone` } };
  const counts = { orgsFinished: run.orgs_finished, orgsFailed: run.orgs_failed, orgsCompleted: run.orgs_finished - run.orgs_failed, orgsInRun: run.enqueued };
  if (run.state !== 'ready') return { state: 'running', detail: counts };
  if (run.fatal_stop || run.stop_reason) return { state: 'halted', detail: { ...counts, stopReason: run.stop_reason, fatalStop: run.fatal_stop } };
  return { state: 'done', detail: counts };
}
