// A huge org (at test size: 1,000 groups, 400 containers, 5,000 other
// documents) migrates, verifies, reverts and is purged like any other; on
// both CouchDB paths (Mango, and the 1.x proxy's paged _all_docs).
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { purgeCompletedOrgs } from '../src/phases/purge.js';
import type { PhaseRow, StepRow } from '../src/db/phases.js';
import { createHarness, describeEachCouch, expectedRows, sqlRows, waitForRunEnd, type Harness } from './support/harness.js';

const T = 'phase_2_migration';

describeEachCouch('huge-org', (couch) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(`huge-${couch}`, {}, { couch });
    h.startWorkers({ concurrency: 2 });
  }, 60_000);
  afterAll(() => h?.close());

  it('migrates, verifies, reverts and purges an org of 1,400 containers and groups among 5,000 other documents', async () => {
    const [org] = await h.seed([{ name: 'huge', groups: 1000, containers: 400, otherDocs: 5000 }]);
    await accountRefresh.process(h.ctx);
    await h.api('POST', `/migrations/${T}/orgs`, { orgs: ['huge'] });
    await h.api('POST', `/migrations/${T}/ready`, {});
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
    const phase = { n: 4, params: {} } as unknown as PhaseRow;
    let step = { id: '4.1', detail: {} } as unknown as StepRow;
    for (let i = 0; i < 10; i++) {
      const r = await purgeCompletedOrgs(h.ctx, phase, step);
      step = { ...step, detail: r.detail ?? {} };
      if (r.state === 'done') break;
    }
    expect(step.detail).toMatchObject({ purged: 1, docs_removed: 1400, unverified: [] });
    expect((await h.api('GET', '/orgs/huge')).body.states[T].state).toBe('purge_successful');
    const left = await h.ctx.couch.readOrgObjects(org.guid);
    expect(left).toEqual([]);
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
  }, 240_000);
});
