// A run's state in the operator's words (src/runs/run-state.ts), and the
// resolution its series is read at (src/db/run-series.ts). Pure.
import { describe, expect, it } from 'vitest';
import type { RunRow } from '../src/db/runs.js';
import { bucketFor, MAX_POINTS } from '../src/db/run-series.js';
import { runState, stopReason } from '../src/runs/run-state.js';

const run = (over: Partial<RunRow>): RunRow =>
  ({
    state: 'ready',
    enqueued: 10,
    orgs_finished: 10,
    orgs_failed: 0,
    orgs_skipped: 0,
    fatal_stop: false,
    stop_reason: null,
    breaker: 'closed',
    ...over,
  }) as RunRow;

describe('a run state', () => {
  it('is not_started without a run, and working or halting while it goes', () => {
    expect(runState(null)).toBe('not_started');
    expect(runState(run({ state: 'working' }))).toBe('working');
    expect(runState(run({ state: 'halting', stop_reason: 'halted by alice' }))).toBe('halting');
    expect(stopReason(run({ state: 'working' }))).toBeNull();
  });

  it('is completed when every org it took was processed, failures or not, and says so', () => {
    expect(runState(run({ orgs_failed: 3 }))).toBe('completed');
    expect(stopReason(run({ orgs_failed: 3 }))).toBe('every org it took was processed: 7 completed, 3 failed');
    expect(runState(run({ orgs_finished: 8, orgs_skipped: 2 }))).toBe('completed');
  });

  it('is halted when an operator or its breaker stopped it, and failed when it could not go on', () => {
    expect(runState(run({ orgs_finished: 4, stop_reason: 'halted by alice' }))).toBe('halted');
    expect(stopReason(run({ orgs_finished: 4, stop_reason: 'halted by alice' }))).toBe('halted by alice');
    expect(runState(run({ orgs_finished: 4, fatal_stop: true, stop_reason: 'failure breaker: …', breaker: 'open' }))).toBe('halted');
    expect(runState(run({ orgs_finished: 4, fatal_stop: true, stop_reason: 'not all of its orgs could be queued: …' }))).toBe('failed');
    expect(runState(run({ orgs_finished: 4 }))).toBe('halted');
    expect(stopReason(run({ orgs_finished: 4 }))).toBe('it stopped before every org it took was processed');
  });
});

describe('the series resolution', () => {
  it('draws a 20-second run every 4 s and a 20-hour one in at most MAX_POINTS points', () => {
    expect(bucketFor(20)).toBe(4);
    expect(bucketFor(15 * 60)).toBe(4);
    expect(bucketFor(2 * 3600)).toBe(30);
    expect(bucketFor(20 * 3600)).toBe(300);
    for (const s of [1, 59, 961, 7200, 72_000, 30 * 86_400]) expect(s / bucketFor(s)).toBeLessThanOrEqual(MAX_POINTS);
  });
});
