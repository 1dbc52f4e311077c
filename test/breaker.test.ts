// The run's circuit breakers. Infrastructure: a CouchDB that stays away past
// the grace opens the breaker (the run pauses, its orgs in flight are put
// back and failed as infrastructure failures); once CouchDB answers again for
// the stable time the breaker closes by itself, those orgs go back to ready
// in the run, and the run completes every org with no operator. Data: when
// too many of the last finished orgs failed on their data, the run halts
// itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SeededOrg } from '../dev/estate.js';
import { createHarness, expectedRows, sqlRows, waitFor, waitForRunEnd, type Harness } from './support/harness.js';
import { startCutProxy, type CutProxy } from '../dev/private-stores.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';
let h: Harness;
let couch: CutProxy;

beforeAll(async () => {
  h = await createHarness('breaker');
  couch = await startCutProxy(Number(new URL(h.couchdb.url).port));
  await h.api('PUT', '/settings/breaker', { cool_down_ms: 300, stable_ms: 600 });
  // Orgs stay dark long enough that a cut finds some in flight.
  await h.api('PUT', '/settings/drain-wait', { ms: 300, acknowledge_risk: true });
});
afterAll(async () => {
  await couch?.close();
  await h?.close();
});

let batch = 0;
async function readyOrgs(specs: Partial<import('../dev/estate.js').OrgSpec>[]): Promise<SeededOrg[]> {
  batch++;
  // Workers are started per test below: seedReady needs none.
  return seedReady(
    h,
    specs.map((s, i) => ({ name: `k${batch}-org-${String(i).padStart(3, '0')}`, ...s })),
  );
}
const status = async () => (await h.api('GET', `/migrations/${T}/status`)).body;
const org = async (name: string) => (await h.api('GET', `/orgs/${name}`)).body;

describe('the infrastructure breaker', () => {
  it('opens when CouchDB stays away past the grace, and closes by itself when it is back: every org completes, no operator', async () => {
    const orgs = await readyOrgs(Array.from({ length: 10 }, () => ({})));
    h.startWorkers({ concurrency: 3 }, { couchdbUrl: couch.url });
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 3 });
    await waitFor('some orgs done', async () => (await status()).orgs_completed >= 2);
    await couch.down();
    const open = await waitFor('breaker open', async () => {
      const s = await status();
      return s.breaker?.state === 'open' && s.objects_in_progress === 0 ? s : null;
    });
    expect(open).toMatchObject({ state: 'working', fatal_stop: true, breaker: { kind: 'infrastructure', trips: 1 } });
    const failedMeanwhile = (await Promise.all(orgs.map((o) => org(o.name)))).filter((o) => o.states[T].state === 'failed');
    expect(failedMeanwhile.length).toBeGreaterThan(0);
    for (const o of failedMeanwhile)
      expect(o.darklaunch).toMatchObject({
        couchdb_containers: true,
        couchdb_groups: true,
        '503_mode': false,
        effective: { containers: 'couchdb', groups: 'couchdb', down: false },
      });
    await couch.up();
    const end = await waitForRunEnd(h);
    expect(end).toMatchObject({
      state: 'completed',
      orgs_completed: 10,
      objects_failed: 0,
      fatal_stop: false,
      stop_reason: 'every org it took was processed: 10 completed, 0 failed',
      breaker: { state: 'closed', trips: 1 },
    });
    for (const o of orgs) {
      const now = await org(o.name);
      expect(now.states[T].state, o.name).toBe('completed');
      expect(now.darklaunch, o.name).toMatchObject({
        couchdb_containers: false,
        couchdb_groups: false,
        '503_mode': false,
        effective: { containers: 'sql', groups: 'sql', down: false },
      });
      expect(await sqlRows(h, o.guid), o.name).toEqual(expectedRows(o));
    }
    // The failures the fault caused stay on the record of the orgs that had them.
    for (const o of failedMeanwhile) expect((await org(o.org_name)).failures[0]).toMatchObject({ kind: 'infrastructure', step: expect.any(String) });
  }, 60_000);
});

describe('the failure breaker', () => {
  it('halts the run when more than the set share of its last finished orgs failed on their data', async () => {
    await h.api('PUT', '/settings/failure-breaker', { share: 0.5, window: 4 });
    // Every org's database is missing: each fails on its data at migrate.
    const orgs = await readyOrgs(Array.from({ length: 12 }, () => ({ noDatabase: true })));
    h.startWorkers({ concurrency: 1 });
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    const end = await waitForRunEnd(h);
    await h.api('PUT', '/settings/failure-breaker', { share: 0.2, window: 50 });
    expect(end).toMatchObject({ fatal_stop: true, breaker: { state: 'open', kind: 'data' } });
    expect(end.stop_reason).toMatch(/failure breaker: 4 of the last 4 finished orgs failed on their data/);
    const states = await Promise.all(orgs.map(async (o) => (await org(o.name)).states[T].state));
    expect(states.filter((s) => s === 'failed')).toHaveLength(4);
    expect(states.filter((s) => s === 'ready')).toHaveLength(8);
    for (const o of orgs) expect((await org(o.name)).darklaunch['503_mode']).not.toBe(true);
  }, 60_000);
});
