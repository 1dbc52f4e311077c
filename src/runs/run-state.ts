// A run's state in the operator's words (docs/api.md, "Runs"). The runs
// table keeps the legacy manager's three (working, halting, ready); "ready"
// alone does not say whether a run finished its orgs, was halted or could not
// go on, so every reply and screen shows this instead.
import type { RunRow } from '../db/runs.js';

export const RUN_STATES = ['working', 'halting', 'completed', 'halted', 'failed', 'not_started'] as const;
export type RunState = (typeof RUN_STATES)[number];

/**
 * - completed: every org it took was processed (some may have failed);
 * - halted: an operator halted it, or its breaker stopped it (stop_reason says which);
 * - failed: it could not go on (its orgs could not all be queued, a batch failed on its data, its starter died).
 */
export function runState(run: RunRow | null | undefined): RunState {
  if (!run) return 'not_started';
  if (run.state !== 'ready') return run.state;
  if (run.breaker !== 'closed') return 'halted';
  if (run.fatal_stop) return 'failed';
  if (run.stop_reason || run.orgs_finished + run.orgs_skipped < run.enqueued) return 'halted';
  return 'completed';
}

/** Why it stopped, in words; for a completed run, how it ended. */
export function stopReason(run: RunRow | null | undefined): string | null {
  if (!run) return null;
  if (run.stop_reason) return run.stop_reason;
  const state = runState(run);
  if (state === 'working' || state === 'halting') return null;
  if (state === 'halted') return 'it stopped before every org it took was processed';
  return `every org it took was processed: ${run.orgs_finished - run.orgs_failed} completed, ${run.orgs_failed} failed${run.orgs_skipped ? `, ${run.orgs_skipped} skipped` : ''}`;
}
