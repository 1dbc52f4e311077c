// A huge org (at test size: 1,000 groups, 400 containers, 5,000 other
// documents) migrates, verifies, reverts and is purged like any other; on
// both CouchDB paths (Mango, and the 1.x proxy's paged _all_docs).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRun } from '../src/runs/manager.js';
import { createHarness, describeEachCouch, expectedRows, sqlRows, waitForRunEnd, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';

describeEachCouch('huge-org', (couch) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(`huge-${couch}`, {}, { couch });
    h.startWorkers({ concurrency: 2 });
  }, 60_000);
  afterAll(() => h?.close());

  it('migrates, verifies, reverts and purges an org of 1,400 containers and groups among 5,000 other documents', async () => {
    const [org] = await seedReady(h, [{ name: 'huge', groups: 1000, containers: 400, otherDocs: 5000 }]);
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    expect(await waitForRunEnd(h, T, 120_000)).toMatchObject({ orgs_completed: 1, objects_failed: 0 });
    const rows = await sqlRows(h, org.guid);
    expect({ containers: rows.containers.length, groups: rows.groups.length }).toEqual({ containers: 400, groups: 1000 });
    expect(rows).toEqual(expectedRows(org));

    // Reverted: back to CouchDB, its rows gone, ready again.
    await h.api('POST', '/migrations/phase_2_revert/start', { orgs: ['huge'] });
    expect(await waitForRunEnd(h, 'phase_2_revert', 120_000)).toMatchObject({ orgs_completed: 1, objects_failed: 0 });
    expect(await sqlRows(h, org.guid)).toEqual({ containers: [], groups: [] });
    expect((await h.api('GET', '/orgs/huge')).body.states[T].state).toBe('ready');

    // Migrated again, then purged from CouchDB after a fresh verification.
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    expect(await waitForRunEnd(h, T, 120_000)).toMatchObject({ orgs_completed: 1, objects_failed: 0 });
    // Phase 4's step 4.1 runs the purge as a run of its own (it cannot be started through the API).
    await startRun(h.ctx, 'phase_2_purge', { count: 'all', concurrency: 4 });
    expect(await waitForRunEnd(h, 'phase_2_purge', 120_000)).toMatchObject({ purged: 1, docs_removed: 1400, unverified: [] });
    expect((await h.api('GET', '/orgs/huge')).body.states[T].state).toBe('purge_successful');
    const left = await h.ctx.couch.readOrgObjects(org.guid);
    expect(left).toEqual([]);
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
  }, 240_000);
});
