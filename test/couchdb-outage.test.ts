// CouchDB going away mid-run, on each kind of CouchDB: real api and worker
// processes reach it through a TCP proxy that can be cut. Cut for 5 s: the
// run pauses and goes on. On real Apache CouchDB the node itself is also
// SIGKILLed (its beam.smp) and started again on the same data directory.
// After each: every org completed (rows exact, routed to SQL, up), none
// failed or dark, no process exited, and /readyz named CouchDB while it was away.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { freePort } from '../src/dev/pouch-server.js';
import { startCutProxy, type CutProxy } from '../src/dev/private-stores.js';
import { setSetting } from '../src/db/settings.js';
import { createHarness, describeEachCouch, REAL_COUCH, type Harness } from './support/harness.js';
import { assertRunRodeThrough, fleetProcesses, runUnderWay, until } from './support/fleet-processes.js';

const ORGS = 40;

describeEachCouch('a CouchDB outage mid-run', (couch) => {
  let h: Harness;
  let cut: CutProxy;
  let config: Config;
  let apiUrl: string;
  const procs = fleetProcesses(() => config);
  let batch = 0;

  beforeAll(async () => {
    h = await createHarness(`couch-outage-${couch}`, { storeOutageGraceMs: 30_000, jobLockMs: 5_000 }, { couch });
    // The processes reach CouchDB (or the 1.x proxy in front of it) through the cut proxy; the harness seeds it directly.
    const direct = new URL(h.config.couchdbUrl);
    cut = await startCutProxy(Number(direct.port));
    const through = new URL(cut.url);
    through.username = direct.username;
    through.password = direct.password;
    config = { ...h.config, couchdbUrl: through.toString().replace(/\/$/, ''), port: await freePort() };
    // Orgs stay in flight long enough for the outage to find some of them dark.
    await setSetting(h.ctx.db, 'drainWaitMs', 300);
    await setSetting(h.ctx.db, 'breakerCoolDownMs', 500);
    await setSetting(h.ctx.db, 'breakerStableMs', 1000);
    procs.spawn('worker-1', 'src/workers/worker.ts');
    procs.spawn('worker-2', 'src/workers/worker.ts');
    procs.spawn('api', 'src/api/server.ts', { PORT: String(config.port) });
    apiUrl = `http://127.0.0.1:${config.port}`;
    await until('the api', async () => (await readyz()).status === 200, procs);
  }, 120_000);

  afterAll(async () => {
    procs.killAll();
    await cut?.close();
    await h?.close();
  });

  const readyz = async () => {
    const res = await fetch(`${apiUrl}/readyz`);
    return { status: res.status, body: (await res.json()) as { failing?: string[] } };
  };

  /** A run under way; CouchDB goes (and /readyz names it), stays away `ms`, comes back; the run rides through. */
  async function outage(take: () => Promise<void>, bring: () => Promise<void>, ms: number) {
    const { orgs, runId } = await runUnderWay(h.ctx, (specs) => h.seed(specs), procs, `c${couch}${++batch}`, ORGS);
    await take();
    await until(
      '/readyz to name couchdb',
      async () => {
        const r = await readyz();
        return r.status === 503 && r.body.failing?.includes('couchdb');
      },
      procs,
    );
    await new Promise((r) => setTimeout(r, ms));
    await bring();
    await assertRunRodeThrough(h.ctx, procs, orgs, runId);
    await until('/readyz ok again', async () => (await readyz()).status === 200, procs);
  }

  it('CouchDB is unreachable for 5 s', async () => {
    await outage(
      () => cut.down(),
      () => cut.up(),
      5000,
    );
  }, 180_000);

  // Only a node this test started can be killed (not one COUCHDB_TEST_URL names).
  if (couch === 'couchdb')
    it.runIf(REAL_COUCH.kind === 'script')(
      "CouchDB's beam.smp is SIGKILLed and the node started again on the same data 3 s later",
      async () => {
        const node = h.couchdb.node!;
        const pid = node.pid();
        await outage(
          () => node.kill(),
          () => node.restart(),
          3000,
        );
        expect(node.pid()).not.toBe(pid);
      },
      180_000,
    );
});
