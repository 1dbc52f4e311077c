// The operator's cockpit over the API (docs/api.md, "Runs"): a run says how
// it ended and why; a run of no orgs is refused and never hides the real one;
// a run's failed orgs are listed a page at a time, for any run; the ones an
// operator names are retried (reset, then a run of only them), on the audit
// record. End state of Postgres (org states, runs, audit) asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, waitForRunEnd, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';
let h: Harness;
const GOOD = ['ck-good-0', 'ck-good-1', 'ck-good-2', 'ck-good-3'];
// No chef_<guid> database: each fails at migrate, on its data.
const BAD = ['ck-bad-0', 'ck-bad-1', 'ck-bad-2'];
let firstRun: string;

beforeAll(async () => {
  h = await createHarness('cockpit');
  h.startWorkers();
  await seedReady(h, [...GOOD.map((name) => ({ name })), ...BAD.map((name) => ({ name, noDatabase: true }))]);
  const started = await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 2 });
  expect(started.status).toBe(202);
  firstRun = started.body.run_id;
  await waitForRunEnd(h);
});
afterAll(() => h?.close());

const state = async (name: string) => (await h.api('GET', `/orgs/${name}`)).body.states[T];
const runRows = async () => (await h.ctx.db.query(`SELECT id::text, enqueued FROM mover.migration_runs WHERE migration_type = $1 ORDER BY id`, [T])).rows;

describe('a run over', () => {
  it('is "completed", and says how it ended: every org it took processed, how many failed', async () => {
    const s = (await h.api('GET', `/migrations/${T}/status`)).body;
    expect(s).toMatchObject({ run_id: firstRun, state: 'completed', orgs_completed: 7, objects_failed: 3, fatal_stop: false });
    expect(s.stop_reason).toBe('every org it took was processed: 4 completed, 3 failed');
    const list = (await h.api('GET', `/migrations/${T}/runs`)).body;
    expect(list.runs[0]).toMatchObject({ run_id: firstRun, state: 'completed', orgs_in_run: 7, orgs_finished: 7, orgs_failed: 3 });
  });

  it('is not followed by a run of no orgs: 409 no_orgs, and the latest run is still the real one', async () => {
    const res = await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 2 });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error: 'no_orgs' });
    expect(res.body.message).toMatch(/no org is waiting/);
    expect((await h.api('GET', `/migrations/${T}/status`)).body.run_id).toBe(firstRun);
    expect(await runRows()).toEqual([{ id: firstRun, enqueued: 7 }]);
  });
});

describe("a run's failed orgs", () => {
  it('come by step, and by name a page at a time: which, where, what kind, why and when', async () => {
    const page1 = (await h.api('GET', `/migrations/${T}/failures?limit=2`)).body;
    expect(page1).toMatchObject({ run_id: firstRun, by_step: { migrate: 3 }, next_cursor: 'ck-bad-1' });
    expect(page1.orgs.map((o) => o.org_name)).toEqual(['ck-bad-0', 'ck-bad-1']);
    expect(page1.orgs[0]).toMatchObject({ step: 'migrate', kind: 'data', org_id: expect.any(String), failed_at: expect.any(String) });
    expect(page1.orgs[0].reason).toBeTruthy();
    const page2 = (await h.api('GET', `/migrations/${T}/failures?limit=2&cursor=${page1.next_cursor}`)).body;
    expect(page2).toMatchObject({ next_cursor: null });
    expect(page2.orgs.map((o) => o.org_name)).toEqual(['ck-bad-2']);
  });

  it('are retried when named: reset to ready, a run of only them, on the audit record; other names skipped', async () => {
    expect((await h.api('POST', `/migrations/${T}/retry`, { orgs: ['ck-good-0'] })).body).toMatchObject({ error: 'not_retryable' });
    const res = await h.api('POST', `/migrations/${T}/retry`, { orgs: ['ck-bad-0', 'ck-bad-1', 'ck-good-0'], concurrency: 2 });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ orgs: 2, skipped: ['ck-good-0'] });
    const retry = res.body.run_id;
    expect(retry).not.toBe(firstRun);
    const end = await waitForRunEnd(h);
    // Their database is still missing: they fail again, in the retry's run; the org not named is untouched.
    expect(end).toMatchObject({ run_id: retry, state: 'completed', orgs_completed: 2, objects_failed: 2 });
    expect(await state('ck-bad-0')).toMatchObject({ state: 'failed', run_id: retry });
    expect(await state('ck-bad-2')).toMatchObject({ state: 'failed', run_id: firstRun });
    expect(await state('ck-good-0')).toMatchObject({ state: 'completed', run_id: firstRun });
    const audit = (await h.api('GET', '/audit?limit=5')).body.entries.find((e) => e.action === 'run.retry');
    expect(audit?.detail).toMatchObject({ run_id: retry, orgs: ['ck-bad-0', 'ck-bad-1'], skipped: ['ck-good-0'] });
    // An earlier run stays readable by its id, with its own failed orgs (ck-bad-2 only, as the others were retried).
    expect((await h.api('GET', `/migrations/${T}/status?run_id=${firstRun}`)).body).toMatchObject({ run_id: firstRun, state: 'completed', orgs_completed: 7 });
    expect((await h.api('GET', `/migrations/${T}/failures?run_id=${firstRun}`)).body.orgs.map((o) => o.org_name)).toEqual(['ck-bad-2']);
    expect((await h.api('GET', `/migrations/${T}/runs?limit=1`)).body).toMatchObject({ runs: [{ run_id: retry }], next_cursor: retry });
    expect((await h.api('GET', `/migrations/${T}/runs?limit=1&cursor=${retry}`)).body.runs.map((r) => r.run_id)).toEqual([firstRun]);
    expect((await runRows()).map((r) => r.id)).toEqual([firstRun, retry]);
  });

  it('is 404 for a run of another type or none, and 400 for a run id that is not one', async () => {
    expect((await h.api('GET', `/migrations/phase_2_revert/status?run_id=${firstRun}`)).body).toMatchObject({ error: 'unknown_run' });
    expect((await h.api('GET', `/migrations/${T}/failures?run_id=999999`)).status).toBe(404);
    const bad = await h.api('GET', `/migrations/${T}/series?run_id=latest`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain('run_id');
  });
});

describe("a run's series", () => {
  it('comes at a resolution sized to the run, from its start, with nothing after its end', async () => {
    const s = (await h.api('GET', `/migrations/${T}/series?run_id=${firstRun}`)).body;
    expect(s).toMatchObject({ run_id: firstRun, bucket_s: 4, started_at: expect.any(String), finished_at: expect.any(String) });
    const end = Date.parse(s.finished_at ?? '') / 1000;
    for (const p of s.points) expect(Date.parse(p.at) / 1000).toBeLessThanOrEqual(end + s.bucket_s);
  });
});
