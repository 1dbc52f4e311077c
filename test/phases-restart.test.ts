// Phase 3 survives every process restarting mid-way; revert then phase 3 again
// ends in the same state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SeededOrg } from '../dev/estate.js';
import type { Fleet } from '../src/workers/fleet.js';
import { createHarness, expectedRows, sqlRows, waitFor, waitForRunEnd, type Harness } from './support/harness.js';
import { getPhase, runPhases1And2, stepOf, waitPhase } from './support/phases.js';

const T = 'phase_2_migration';
let h: Harness;
let fleet: Fleet;
let estate: SeededOrg[];

beforeAll(async () => {
  h = await createHarness('restart');
  fleet = h.startWorkers({ phaseTickMs: 100, concurrency: 2 });
  estate = await h.seed([...Array.from({ length: 24 }, (_, i) => ({ name: `r-org-${String(i).padStart(2, '0')}` })), { name: 'r-pre', precreated: true }]);
});
afterAll(() => h?.close());

async function assertEndState() {
  for (const org of estate.filter((o) => !o.precreated)) {
    const s = (await h.api('GET', `/orgs/${org.name}`)).body;
    expect(s.states[T].state, org.name).toBe('completed');
    expect(s.darklaunch).toMatchObject({
      couchdb_containers: false,
      couchdb_groups: false,
      '503_mode': false,
      effective: { containers: 'sql', groups: 'sql', down: false },
    });
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
  }
  const { rows } = await h.ctx.db.query(`SELECT count(*)::int AS n FROM org_migration_state WHERE state = 'started'`);
  expect(rows[0].n).toBe(0);
}

describe('restarts and revert', () => {
  it('finishes phase 3 after the api and every worker are restarted mid-way', async () => {
    await runPhases1And2(h, ['r-org-00', 'r-org-01']);
    expect((await h.api('POST', '/phases/3/start', { concurrency: 1, sleep_time_ms: 250 })).status).toBe(202);
    await waitFor('some orgs of phase 3 done', async () => Number(stepOf(await getPhase(h, 3), '3.3').detail.orgs_finished ?? 0) >= 3);
    // Every process goes away ...
    await fleet.close(5000);
    await h.restartApi();
    const mid = await getPhase(h, 3);
    expect(mid.state).toBe('running');
    expect(stepOf(mid, '3.3').state).toBe('running');
    expect((await h.api('POST', '/phases/3/start', {})).status).toBe(409);
    // ... and new ones, on the same stores, carry on.
    fleet = h.startWorkers({ phaseTickMs: 100, concurrency: 2 });
    const done = await waitPhase(h, 3, ['completed', 'failed', 'halted']);
    expect(done.state).toBe('completed');
    expect(stepOf(done, '3.3').detail).toMatchObject({ orgs_completed: 22, orgs_failed: 0 });
    await assertEndState();
  });

  it('reverts completed orgs to CouchDB, then phase 3 again ends in the same state', async () => {
    await h.api('PUT', '/settings/sleep-time', { ms: 0 });
    expect((await h.api('POST', '/migrations/phase_2_revert/start', { orgs: ['r-org-03', 'ghost'] })).body).toMatchObject({ orgs: 1, skipped: ['ghost'] });
    await waitForRunEnd(h, 'phase_2_revert');
    const reverted = estate.find((o) => o.name === 'r-org-03')!;
    expect((await h.api('GET', '/orgs/r-org-03')).body).toMatchObject({
      states: { [T]: { state: 'ready' } },
      darklaunch: { couchdb_containers: true, '503_mode': false },
    });
    expect(await sqlRows(h, reverted.guid)).toEqual({ containers: [], groups: [] });

    // A count takes that many completed orgs, in org_id order, like every kind's count.
    const completed = [];
    for (const org of estate.filter((o) => !o.precreated && o.name !== 'r-org-03')) {
      if ((await h.api('GET', `/orgs/${org.name}`)).body.states[T].state === 'completed') completed.push(org);
    }
    const firstTwo = completed.sort((a, b) => (a.guid < b.guid ? -1 : 1)).slice(0, 2);
    expect((await h.api('POST', '/migrations/phase_2_revert/start', { count: 2 })).body).toMatchObject({ orgs: 2, skipped: [] });
    expect(await waitForRunEnd(h, 'phase_2_revert')).toMatchObject({ orgs_completed: 2, objects_requested: 2, objects_failed: 0 });
    for (const org of completed) {
      expect((await h.api('GET', `/orgs/${org.name}`)).body.states[T].state).toBe(firstTwo.includes(org) ? 'ready' : 'completed');
    }

    expect((await h.api('POST', '/migrations/phase_2_revert/start', { count: 'all' })).status).toBe(202);
    const status = await waitForRunEnd(h, 'phase_2_revert');
    expect(status).toMatchObject({ orgs_completed: 21, objects_failed: 0 });
    // Re-running is safe: nothing left to revert, so no run is made.
    expect((await h.api('POST', '/migrations/phase_2_revert/start', { count: 'all' })).body).toMatchObject({ error: 'no_orgs' });
    for (const org of estate.filter((o) => !o.precreated)) {
      expect((await h.api('GET', `/orgs/${org.name}`)).body.states[T].state).toBe('ready');
      expect(await sqlRows(h, org.guid)).toEqual({ containers: [], groups: [] });
      expect(await h.ctx.darklaunchRedis.hgetall(`dl_org_${org.name}`)).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
    }
    expect((await h.api('POST', '/phases/3/start', { concurrency: 4, sleep_time_ms: 0, again: true })).status).toBe(202);
    expect((await waitPhase(h, 3, ['completed', 'failed', 'halted'])).state).toBe('completed');
    await assertEndState();
  });

  it('shows a halted run as a halted phase, and resumes it from the halted step', async () => {
    await h.api('POST', '/migrations/phase_2_revert/start', { count: 'all' });
    await waitForRunEnd(h, 'phase_2_revert');
    expect((await h.api('POST', '/phases/3/start', { concurrency: 1, sleep_time_ms: 300, again: true })).status).toBe(202);
    await waitFor('phase 3 migrating', async () => Number(stepOf(await getPhase(h, 3), '3.3').detail.orgs_finished ?? 0) >= 1);
    expect((await h.api('POST', '/migrations/phase_2_migration/halt', undefined, { 'x-mover-actor': 'carol' })).status).toBe(200);
    const halted = await waitPhase(h, 3, ['halted', 'failed', 'completed']);
    expect(halted.state).toBe('halted');
    expect(stepOf(halted, '3.3')).toMatchObject({ state: 'failed', detail: { stop_reason: 'halted by carol' } });
    const resumed = await h.api('POST', '/phases/3/start', { concurrency: 4, sleep_time_ms: 0 });
    expect(resumed.body).toMatchObject({ resumed: true });
    expect((await waitPhase(h, 3, ['completed', 'failed', 'halted'])).state).toBe('completed');
    await assertEndState();
  });
});
