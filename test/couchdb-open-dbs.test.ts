// CouchDB's open-database limit (src/runs/couchdb-open-dbs.ts): a paced run
// whose orgs, held open through the drain wait, reach CouchDB's
// max_dbs_open says so in run status (the page and the CLI show it), with
// what to raise; the check is made again when the concurrency is set. A
// server whose limit cannot be read (PouchDB Server, the 1.x proxy in front
// of it) gives no warning and no error. End state: the run's params in
// Postgres (through run status) and the queue's concurrency; CouchDB is only read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { couchFetch } from '../dev/couchdb-server.js';
import { openDbsWarning } from '../src/runs/couchdb-open-dbs.js';
import { getRun } from '../src/db/runs.js';
import { Concurrency } from '../src/api/schemas.js';
import { createHarness, describeEachCouch, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';

describe('openDbsWarning (pure)', () => {
  it('is null while the run fits, and names the limit, what the run holds and what to raise once it does not', () => {
    expect(openDbsWarning({ maxDbsOpen: 500, shardsPerDb: 2 }, 249)).toBeNull();
    const w = openDbsWarning({ maxDbsOpen: 500, shardsPerDb: 2 }, 300);
    expect(w).toMatch(/at most 500 database files open \(\[couchdb\] max_dbs_open\)/);
    expect(w).toMatch(/holds 600 open through its drain wait \(300 orgs × 2 shard files\)/);
    expect(w).toMatch(/Raise max_dbs_open to at least 1200 .* or run at concurrency 125 or less/);
    // CouchDB 1.x: one file a database, 100 open by default.
    expect(openDbsWarning({ maxDbsOpen: 100, shardsPerDb: 1 }, 150)).toMatch(/holds 150 open through its drain wait \(150 orgs\)/);
    expect(openDbsWarning({ maxDbsOpen: 1, shardsPerDb: 4 }, 1)).toMatch(/concurrency 1 or less/);
  });
});

const MOST_CONCURRENCY = Concurrency.maximum ?? 1000;

describeEachCouch("a run against CouchDB's open-database limit", (couch) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(`open-dbs-${couch}`, {}, { couch });
    await seedReady(h, [{ name: 'od-0' }, { name: 'od-1' }]);
  }, 120_000);
  afterAll(() => h?.close());

  it('reads the limit where the server gives it, says so in run status when the run reaches it, and again when the concurrency is set', async () => {
    const limit = await h.ctx.couch.openDbsLimit();
    if (couch !== 'couchdb') {
      // PouchDB Server has no such setting: no warning, no error, and the run starts.
      expect(limit).toMatchObject({ why: expect.stringMatching(/max_dbs_open/) });
    } else {
      if ('why' in limit) throw new Error(`a real CouchDB gave no limit: ${limit.why}`);
      const info = await (await couchFetch(h.couchdb.url, `/${h.couchdb.accountDb}`)).json();
      expect(limit.shardsPerDb).toBe(info.cluster.q);
      expect(limit.maxDbsOpen).toBeGreaterThan(0);
    }
    const reaches = 'why' in limit ? 500 : Math.ceil(limit.maxDbsOpen / limit.shardsPerDb);
    // A CouchDB whose limit was raised past what a run may ask (concurrency 1,000 at most) is never reached: no warning at the most.
    const concurrency = Math.min(reaches, MOST_CONCURRENCY);
    const started = await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency });
    expect(started.status).toBe(202);
    const status = async () => (await h.api('GET', `/migrations/${T}/status`)).body.guard?.couchdb_open_dbs;
    if ('why' in limit || concurrency < reaches) expect(await status()).toBeNull();
    else expect(await status()).toMatch(new RegExp(`at most ${limit.maxDbsOpen} database files open`));
    // Lowered below the limit: the warning goes.
    expect((await h.api('PUT', `/migrations/${T}/concurrency`, { concurrency: 1 })).status).toBe(200);
    expect(await status()).toBeNull();
    expect(await h.ctx.queues[T].getGlobalConcurrency()).toBe(1);
    const run = await getRun(h.ctx.db, started.body.run_id);
    expect(run?.params.couchdb_open_dbs).toBeUndefined();
    expect((await h.api('POST', `/migrations/${T}/halt`)).status).toBe(200);
  });
});
