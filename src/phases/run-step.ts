// A phase step that runs a migration (or prep) and waits for it to end,
// without holding the driver: each tick polls the run. The run id is kept in
// the step's detail, and a run started just before a crash is adopted, so a
// restarted fleet never starts the same run twice.
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import type { StepRow } from '../db/phases.js';
import { startRun } from '../runs/manager.js';
import type { ExpectedDefault } from '../runs/routing-preflight.js';
import type { StepResult } from './types.js';

export async function runAndWait(ctx: Context, step: StepRow, type: string, concurrency: number, expect: ExpectedDefault = 'any'): Promise<StepResult> {
  // runId: what a step started before field names were snake_case kept.
  let runId = (step.detail.run_id ?? step.detail.runId) as string | undefined;
  if (!runId) {
    const latest = await runs.latestRun(ctx.db, type);
    if (latest && step.started_at && latest.started_at >= step.started_at)
      runId = latest.id; // started before a restart
    else if (latest && latest.state !== 'ready')
      return { state: 'failed', detail: { error: `another ${type} run (${latest.id}) is active; halt it or wait, then start the phase again` } };
    else runId = (await startRun(ctx, type, { count: 'all', concurrency, expectRouting: expect })).run.id;
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
  if (run.fatal_stop || run.stop_reason) return { state: 'halted', detail: { ...counts, stop_reason: run.stop_reason, fatal_stop: run.fatal_stop } };
  return { state: 'done', detail: counts };
}
