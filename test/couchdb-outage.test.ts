// CouchDB going away mid-run, on each kind of CouchDB: real api and worker
// processes reach it through a TCP proxy that can be cut. Cut for 5 s: the
// run pauses and goes on.
// After each: every org completed (rows exact, routed to SQL, up), none
// failed or dark, no process exited, and /readyz named CouchDB while it was away.
import { afterAll, beforeAll, it } from 'vitest';
import type { Config } from '../src/config.js';
import { freePort } from '../dev/pouch-server.js';
import { startCutProxy, type CutProxy } from '../dev/private-stores.js';
import { setSetting } from '../src/db/settings.js';
import { createHarness, describeEachCouch, type Harness } from './support/harness.js';
import { assertRunRodeThrough, fleetProcesses, runUnderWay, until } from './support/fleet-processes.js';

const ORGS = 40;
const NOT_OURS_TO_KILL = "a CouchDB given by COUCHDB_TEST_URL is shared, not this test's to SIGKILL";

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
    // On the loopback or not (COUCHDB_TEST_URL may name another host), over plain http.
    cut = await startCutProxy(Number(direct.port || 80), direct.hostname);
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

  // CouchDB itself crashing (beam.smp SIGKILLed, started again on its data 3 s later) needs a node the test owns; the
  // real CouchDB now only comes by URL, shared with the other files, so that case is not run (FAULTS.md has its figures).
  if (couch === 'couchdb') it.skip(`CouchDB's beam.smp is SIGKILLed and the node started again on the same data 3 s later (skipped: ${NOT_OURS_TO_KILL})`);
});
