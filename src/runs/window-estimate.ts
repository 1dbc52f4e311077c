// How long phase_2_migration would take for the orgs the estate survey found
// still to move (docs/architecture.md, "Concurrency and pacing"; the formula
// in docs/domain.md, "The estate survey"). Pure.
//
// An org holds one of `concurrency` slots for its copy (timed by the survey:
// the read of its database, the authz look-up and the planning) and its drain
// wait; and at most `concurrency` orgs start per pacing window (the longer of
// the sleep time and the drain wait, src/queues.ts applyPacing). So each slot
// takes an org every max(copy + drain wait, window), and
//
//   seconds = orgs × max(mean copy + drain wait, sleep time, drain wait) / concurrency.
//
// At production settings (drain wait 5 s) the drain wait dominates
// (BENCHMARKS.md): the copy of a typical org takes tens of milliseconds.

export interface WindowEstimate {
  concurrency: number;
  drain_wait_ms: number;
  /** 0 while the survey has found no org still to migrate. */
  seconds: number;
  inputs: {
    /** Orgs the migration would still move (not migrated yet, database read, no preflight refusal), surveyed so far. */
    orgs: number;
    copy_ms_mean: number | null;
    copy_ms_total: number;
    sleep_time_ms: number;
    /** How long an org holds its slot: its copy and the drain wait. */
    cycle_ms: number | null;
    /** At most `concurrency` starts per this window: the longer of the sleep time and the drain wait (0: no pacing). */
    pacing_window_ms: number;
    /** What bounds the rate: the orgs' cycle, or the pacing. */
    bound_by: 'cycle' | 'pacing' | null;
    formula: string;
  };
}

export const FORMULA = 'orgs × max(copy_ms_mean + drain_wait_ms, pacing_window_ms) / concurrency, pacing_window_ms = max(sleep_time_ms, drain_wait_ms)';

export function windowEstimate(p: { orgs: number; copyMsTotal: number; concurrency: number; drainWaitMs: number; sleepTimeMs: number }): WindowEstimate {
  const copyMean = p.orgs ? p.copyMsTotal / p.orgs : null;
  const cycle = copyMean === null ? null : copyMean + p.drainWaitMs;
  const window = Math.max(p.sleepTimeMs, p.drainWaitMs);
  const perSlot = cycle === null ? null : Math.max(cycle, window);
  const round = (n: number, places = 1) => Math.round(n * 10 ** places) / 10 ** places;
  return {
    concurrency: p.concurrency,
    drain_wait_ms: p.drainWaitMs,
    seconds: perSlot === null ? 0 : round((p.orgs * perSlot) / p.concurrency / 1000),
    inputs: {
      orgs: p.orgs,
      copy_ms_mean: copyMean === null ? null : round(copyMean, 2),
      copy_ms_total: p.copyMsTotal,
      sleep_time_ms: p.sleepTimeMs,
      cycle_ms: cycle === null ? null : round(cycle, 2),
      pacing_window_ms: window,
      bound_by: cycle === null ? null : cycle >= window ? 'cycle' : 'pacing',
      formula: FORMULA,
    },
  };
}
