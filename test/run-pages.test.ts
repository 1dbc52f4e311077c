// Runs are queued page by page (src/runs/manager.ts): a run of more orgs than
// a page takes each org once, in order, honours its count and named orgs
// across pages, never ends while its starter is still queueing, and halts
// (never passing for done) when its starter dies part-way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as runs from '../src/db/runs.js';
import { runPaging, startRun } from '../src/runs/manager.js';
import { reconcileOnce } from '../src/workers/reconciler.js';
import { createHarness, expectedRows, sqlRows, waitForRunEnd, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';
let h: Harness;
beforeAll(async () => {
  h = await createHarness('pages');
  runPaging.orgsPerPage = 3;
});
afterAll(async () => {
  runPaging.orgsPerPage = 10_000;
  await h?.close();
});

describe('runs queued page by page', () => {
  it('takes every org once across pages, honours count, and completes them', async () => {
    const orgs = await seedReady(
      h,
      Array.from({ length: 8 }, (_, i) => ({ name: `pg-org-${i}` })),
    );
    h.startWorkers({ concurrency: 4 });

    const first = await startRun(h.ctx, T, { count: 5, concurrency: 4 });
    expect(first.run.enqueued).toBe(5);
    expect(await waitForRunEnd(h)).toMatchObject({ orgs_completed: 5, objects_failed: 0, state: 'completed' });
    const second = await startRun(h.ctx, T, { count: 'all', concurrency: 4 });
    expect(second.run.enqueued).toBe(3);
    expect(await waitForRunEnd(h)).toMatchObject({ orgs_completed: 3, objects_failed: 0, state: 'completed' });
    for (const o of orgs) expect(await sqlRows(h, o.guid)).toEqual(expectedRows(o));
    // Each org taken by exactly one of the runs, in org_id order: the first run took the five lowest.
    const { rows } = await h.ctx.db.query(
      `SELECT org_id, run_id::text AS run_id FROM mover.org_progress WHERE migration_type = $1 AND org_id = ANY($2) ORDER BY org_id`,
      [T, orgs.map((o) => o.guid)],
    );
    expect(rows.map((r) => r.run_id)).toEqual([...Array(5).fill(first.run.id), ...Array(3).fill(second.run.id)]);
    expect((await runs.getRun(h.ctx.db, second.run.id))?.enqueueing).toBe(false);
  }, 60_000);

  it('reports named orgs it did not take across pages (a revert of some completed orgs and one that is not)', async () => {
    const names = ['pg-org-0', 'pg-org-3', 'pg-org-4', 'pg-org-6', 'pg-org-7', 'no-such-org'];
    const { run, skipped } = await startRun(h.ctx, 'phase_2_revert', { count: 'all', orgs: names, concurrency: 2 });
    expect(run.enqueued).toBe(5);
    expect(skipped).toEqual(['no-such-org']);
    const end = await waitForRunEnd(h, 'phase_2_revert');
    expect(end.state).toBe('completed');
    const { rows } = await h.ctx.db.query(`SELECT org_name FROM org_migration_state WHERE migration_type = $1 AND state = 'ready' ORDER BY org_name`, [T]);
    expect(rows.map((r) => r.org_name)).toEqual(names.slice(0, 5));
  }, 60_000);

  it('halts, saying so, when its starter died part-way', async () => {
    // What a starter that died after creating the run leaves: a run still marked queueing, silent since.
    const run = (await runs.createRun(h.ctx.db, T, null, 0, 2))!;
    expect(run.enqueueing).toBe(true);
    await reconcileOnce(h.ctx);
    expect((await runs.getRun(h.ctx.db, run.id))?.state).toBe('working'); // its starter may still be at it
    await h.ctx.db.query(`UPDATE mover.migration_runs SET enqueue_beat = now() - interval '3 minutes' WHERE id = $1`, [run.id]);
    await reconcileOnce(h.ctx);
    expect((await runs.getRun(h.ctx.db, run.id))?.enqueueing).toBe(true); // silent 3 minutes: maybe slow, not dead
    await h.ctx.db.query(`UPDATE mover.migration_runs SET enqueue_beat = now() - interval '6 minutes' WHERE id = $1`, [run.id]);
    await reconcileOnce(h.ctx);
    // Halted, saying how far it got, never passing for done; its starter, if it was alive after all, can queue no more.
    expect(await runs.getRun(h.ctx.db, run.id)).toMatchObject({
      enqueueing: false,
      state: 'ready',
      enqueued: 0,
      fatal_stop: true,
      stop_reason: 'its starter stopped after queueing 0 orgs; the rest were not queued',
    });
    expect(await runs.addEnqueued(h.ctx.db, run.id, 10)).toBe(false);
  });
});
