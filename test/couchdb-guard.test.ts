// The live-service guard (src/runs/couchdb-guard.ts): with a CouchDB budget
// set, a working run's starts are slowed while CouchDB's p99 request time is
// over it, and sped up again once it holds, between the operator's
// concurrency and 1; the budget is a setting an operator sets (audited); run
// status and /metrics say what the guard measured, what it lets the run have
// and why. PouchDB Server gives no request-time figures, so the guard falls
// back to mover's own request times, which this test feeds. End state of
// Postgres (the run's guard columns, settings, audit) and of the queue
// (its global concurrency) asserted.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GUARD_WINDOW_MS, guardClock, guardRuns, measure, nextConcurrency } from '../src/runs/couchdb-guard.js';
import { forgetCouchRequests, recordCouchRequest } from '../src/stores/couch-latency.js';
import { Couch, requestTimeFigure } from '../src/stores/couch.js';
import { activeRuns, getRun } from '../src/db/runs.js';
import { forgetCachedSettings } from '../src/db/settings.js';
import { createHarness, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';
import { claimHeld } from './support/held.js';

const T = 'phase_2_migration';
const PACED = new Set([T]);
let h: Harness;
let runId: string;
let guids: string[];

/** `n` CouchDB requests of `ms` each, as this process's adapter would have timed them just now. */
const requests = (n: number, ms: number) => {
  for (let i = 0; i < n; i++) recordCouchRequest(ms);
};
// The guard's clock, stepped by the test: a window passes between passes unless a test says none does.
let clock = Date.now();
guardClock.now = () => clock;
// Pass after pass, with none of the interval between decisions a fleet keeps.
const pass = async (advanceMs = GUARD_WINDOW_MS) => {
  clock += advanceMs;
  // The pass reads the budget through this process's one-second settings cache: afresh here, as a test sets it.
  forgetCachedSettings();
  await guardRuns(h.ctx, await activeRuns(h.ctx.db), PACED, 0);
};
/** Run status, its settings read afresh (the api reads them through a one-second cache in this process). */
const status = async () => {
  forgetCachedSettings();
  return (await h.api('GET', `/migrations/${T}/status`)).body;
};

beforeAll(async () => {
  h = await createHarness('couchdb-guard');
  // No workers: the run stays working with its orgs ready, and the guard is driven pass by pass.
  const orgs = await seedReady(h, [{ name: 'gd-0' }, { name: 'gd-1' }, { name: 'gd-2' }]);
  guids = orgs.map((o) => o.guid);
});
afterAll(() => h?.close());
beforeEach(() => forgetCouchRequests());

describe('the CouchDB budget', () => {
  it('is a setting an operator sets, audited; a bad one is a 400 naming the field', async () => {
    expect((await h.api('GET', '/settings')).body.couchdb_budget_p99_ms).toBe(0);
    const set = await h.api('PUT', '/settings/couchdb-budget', { p99_ms: 100 });
    expect(set.status).toBe(200);
    expect(set.body.couchdb_budget_p99_ms).toBe(100);
    const bad = await h.api('PUT', '/settings/couchdb-budget', { p99_ms: -1 });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/p99_ms/);
    const audit = (await h.api('GET', '/audit?limit=5')).body.entries;
    expect(audit[0]).toMatchObject({ action: 'settings.couchdb_budget', detail: { from: 0, to: 100 } });
  });
});

describe('the guard', () => {
  it('starts a run under a budget at a tenth of its concurrency, and says so', async () => {
    const started = await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 40 });
    expect(started.status).toBe(202);
    runId = started.body.run_id!;
    expect((await getRun(h.ctx.db, runId))?.effective_concurrency).toBe(4);
    expect(await h.ctx.queues[T].getGlobalConcurrency()).toBe(4);
    const s = await status();
    expect(s.guard).toMatchObject({ budget_p99_ms: 100, set_concurrency: 40, effective_concurrency: 4 });
    expect(s.guard?.reason).toMatch(/starting at 4 of 40 under the CouchDB budget of 100 ms/);
    // Within the budget it grows by a twentieth of 40 a window, back to 40 and no hold.
    requests(30, 10);
    await pass();
    expect((await getRun(h.ctx.db, runId))?.effective_concurrency).toBe(6);
    for (let i = 0; i < 20; i++) await pass();
    expect((await getRun(h.ctx.db, runId))?.effective_concurrency).toBeNull();
    expect(await h.ctx.queues[T].getGlobalConcurrency()).toBe(40);
  });

  it("falls back to mover's own request times where CouchDB gives none, and says why", async () => {
    requests(30, 5);
    const f = await measure(h.ctx);
    expect(f).toMatchObject({ source: 'mover_requests', p99Ms: 5 });
    expect(f.note).toMatch(/gives no request-time figures/);
    // Too few of its own: three small requests, timed, the slowest its figure.
    forgetCouchRequests();
    const probed = await measure(h.ctx);
    expect(probed).toMatchObject({ source: 'probe', p99Ms: expect.any(Number) });
    expect(probed.note).toMatch(/sent 0 requests in the last 10 s; 3 probes/);
    // A probe that fails gives no figure, with why; nothing is thrown.
    const nowhere = new Couch(h.couchdb.url, { graceMs: 0, log: h.ctx.log }, 'mover_no_such_account_db');
    const none = await measure({ ...h.ctx, couch: nowhere });
    expect(none.p99Ms).toBeNull();
    expect(none.note).toMatch(/a probe failed/);
  });

  it('halves the starts when CouchDB is over budget: the queue, the claim gate and run status follow', async () => {
    requests(30, 400);
    await pass();
    expect((await getRun(h.ctx.db, runId))?.effective_concurrency).toBe(20);
    expect(await h.ctx.queues[T].getGlobalConcurrency()).toBe(20);
    const s = await status();
    expect(s.guard).toMatchObject({ budget_p99_ms: 100, measured_p99_ms: 400, source: 'mover_requests', set_concurrency: 40, effective_concurrency: 20 });
    expect(s.guard?.reason).toMatch(/over the budget of 100 ms/);
    // A second slow pass within the window does not cut again: the figure lags the cut.
    await pass(0);
    // Nor does a fleet's pass within its interval of the last decision: every worker runs it, one decides.
    const decided = (await getRun(h.ctx.db, runId))?.guard_at?.getTime();
    await guardRuns(h.ctx, await activeRuns(h.ctx.db), PACED);
    expect((await getRun(h.ctx.db, runId))?.guard_at?.getTime()).toBe(decided);
    expect((await getRun(h.ctx.db, runId))?.effective_concurrency).toBe(20);
    const metrics = (await h.api('GET', '/metrics')).text;
    expect(metrics).toMatch(new RegExp(`mover_couchdb_guard\\{migration_type="${T}",run_id="${runId}",figure="effective_concurrency"\\} 20`));
  });

  it('speeds the run up again once the budget holds, back to the operator’s concurrency', async () => {
    requests(30, 10);
    await pass();
    expect((await getRun(h.ctx.db, runId))?.effective_concurrency).toBe(22);
    for (let i = 0; i < 12; i++) await pass();
    const run = await getRun(h.ctx.db, runId);
    expect(run?.effective_concurrency).toBeNull();
    expect(await h.ctx.queues[T].getGlobalConcurrency()).toBe(40);
    expect((await status()).guard).toMatchObject({ effective_concurrency: 40, reason: null });
  });

  it('holds the claim gate at the effective concurrency', async () => {
    await h.ctx.db.query(`UPDATE mover.migration_runs SET effective_concurrency = 1 WHERE id = $1`, [runId]);
    const first = await claimHeld(h.ctx.db, { type: T, orgId: guids[0], runId });
    const second = await claimHeld(h.ctx.db, { type: T, orgId: guids[1], runId });
    expect(first.claim).toMatchObject({ claimed: true });
    expect(second.claim).toMatchObject({ claimed: false, reason: 'at_capacity' });
  });

  it('lets the run go at its own concurrency once the budget is 0', async () => {
    await h.api('PUT', '/settings/couchdb-budget', { p99_ms: 0 });
    await pass();
    expect((await getRun(h.ctx.db, runId))?.effective_concurrency).toBeNull();
    expect(await h.ctx.queues[T].getGlobalConcurrency()).toBe(40);
    expect((await status()).guard).toMatchObject({ budget_p99_ms: null, effective_concurrency: 40 });
  });
});

describe('nextConcurrency (AIMD, pure)', () => {
  const f = (p99Ms: number | null) => ({ p99Ms, source: 'mover_requests', note: 'x' });
  it('halves over budget at most once a window, never below 1; adds a twentieth within it; holds with no figure', () => {
    expect(nextConcurrency({ set: 300, effective: 300, lastCutAt: 0, lastChangeAt: 0 }, f(900), 500, GUARD_WINDOW_MS)).toMatchObject({
      effective: 150,
      cut: true,
    });
    expect(nextConcurrency({ set: 300, effective: 150, lastCutAt: 1000, lastChangeAt: 1000 }, f(900), 500, 2000)).toMatchObject({ effective: 150, cut: false });
    expect(nextConcurrency({ set: 300, effective: 1, lastCutAt: 0, lastChangeAt: 0 }, f(900), 500, GUARD_WINDOW_MS)).toMatchObject({ effective: 1 });
    expect(nextConcurrency({ set: 300, effective: 150, lastCutAt: 0, lastChangeAt: 0 }, f(100), 500, GUARD_WINDOW_MS)).toMatchObject({ effective: 165 });
    expect(nextConcurrency({ set: 300, effective: 295, lastCutAt: 0, lastChangeAt: 0 }, f(100), 500, GUARD_WINDOW_MS)).toMatchObject({ effective: 300 });
    expect(nextConcurrency({ set: 300, effective: 300, lastCutAt: 0, lastChangeAt: 0 }, f(100), 500, 1)).toEqual({ effective: 300, cut: false, reason: null });
    expect(nextConcurrency({ set: 300, effective: 40, lastCutAt: 0, lastChangeAt: 0 }, f(null), 500, 1).reason).toMatch(/no CouchDB figure/);
    // The operator lowered the concurrency under the guard's: the operator's wins.
    expect(nextConcurrency({ set: 10, effective: 40, lastCutAt: 0, lastChangeAt: 0 }, f(100), 500, 1)).toMatchObject({ effective: 10 });
    expect(nextConcurrency({ set: 300, effective: 20, lastCutAt: 0, lastChangeAt: 0 }, f(900), 0, 1)).toEqual({ effective: 300, cut: false, reason: null });
  });

  it('speeds up at most once a window, whatever the figure; cuts however recently it rose', () => {
    const justChanged = { set: 300, effective: 150, lastCutAt: 0, lastChangeAt: 50_000 };
    for (const source of ['couchdb_stats', 'couchdb_1x_stats', 'mover_requests', 'probe']) {
      const within = { p99Ms: 100, source, note: 'x' };
      const held = nextConcurrency(justChanged, within, 500, 50_000 + GUARD_WINDOW_MS - 1);
      expect(held).toMatchObject({ effective: 150, cut: false });
      expect(held.reason).toMatch(/speeding up once the figure covers the last change/);
      expect(nextConcurrency(justChanged, within, 500, 50_000 + GUARD_WINDOW_MS)).toMatchObject({ effective: 165 });
      expect(nextConcurrency(justChanged, { ...within, p99Ms: 900 }, 500, 50_001)).toMatchObject({ effective: 75, cut: true });
    }
  });
});

describe("CouchDB's request-time figures", () => {
  it('reads the p99 of 2.x/3.x, estimates it on 1.x, and refuses anything else', () => {
    const v3 = {
      value: {
        n: 120,
        percentile: [
          [50, 3],
          [75, 5],
          [90, 9],
          [95, 14],
          [99, 42.5],
          [999, 80],
        ],
      },
      type: 'histogram',
    };
    expect(requestTimeFigure(v3)).toBe(42.5);
    expect(requestTimeFigure({ value: { n: 0, percentile: [[99, 0]] } })).toBeNull();
    expect(requestTimeFigure({ couchdb: { request_time: { mean: 10, stddev: 2 } } })).toBeCloseTo(14.66);
    for (const junk of [
      null,
      {},
      { value: { percentile: [[99, 'x']] } },
      { value: { percentile: [[99, -1]] } },
      { couchdb: { request_time: { mean: null } } },
      'ok',
    ])
      expect(requestTimeFigure(junk), JSON.stringify(junk)).toBeNull();
  });
});
