// The fault suite: real worker and api processes (as the Procfile starts
// them) over a private Redis and a private PostgreSQL; workers are killed, and
// each store is crashed mid-run and comes back (CouchDB's outages, on each kind
// of CouchDB, are test/couchdb-outage.test.ts).
// After each: every org of the run completed (rows exact, routed to SQL, up),
// none started, none dark, no process exited, and /readyz named the store
// while it was away.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { closeContext, createContext, type Context } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { getRun } from '../src/db/runs.js';
import { setSetting } from '../src/db/settings.js';
import { seedDarklaunchDefaults, seedEstate } from '../dev/estate.js';
import { freePort, startPouchServer, type PouchServer } from '../dev/pouch-server.js';
import { createLogger } from '../src/log.js';
import { startPrivatePostgres, startPrivateRedis, type PrivateServer } from '../dev/private-stores.js';
import { assertRunRodeThrough as rodeThrough, fleetProcesses, runUnderWay as underWay, until as untilOr } from './support/fleet-processes.js';

const ORGS = 40;

let redis: PrivateServer;
let pg: PrivateServer;
let pouch: PouchServer;
let ctx: Context;
let config: Config;
let apiUrl: string;
const procs = fleetProcesses(() => config);
const processes = procs.list;
const spawnProcess = (name: string, entry: 'src/workers/worker.ts' | 'src/api/server.ts', extra: Record<string, string> = {}) =>
  procs.spawn(name, entry, extra);
const until = <T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 60_000) => untilOr(what, fn, procs, ms);

const readyz = async () => {
  const res = await fetch(`${apiUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as { failing?: string[] } };
};

beforeAll(async () => {
  [redis, pg, pouch] = await Promise.all([startPrivateRedis(), startPrivatePostgres(), startPouchServer()]);
  config = {
    databaseUrl: pg.url,
    redisUrl: redis.url,
    darklaunchRedisUrl: redis.url,
    couchdbUrl: pouch.url,
    apiToken: randomBytes(8).toString('hex'),
    port: await freePort(),
    logLevel: 'silent',
    queuePrefix: 'faults',
    workerConcurrency: 4,
    dryRun: false,
    storeOutageGraceMs: 30_000,
    jobLockMs: 5_000,
  };
  ctx = createContext(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 'faults-test'));
  await migrate(ctx.db);
  await seedDarklaunchDefaults(ctx.darklaunchRedis);
  // Orgs stay in flight long enough for a fault to find some of them dark.
  await setSetting(ctx.db, 'drainWaitMs', 300);
  await setSetting(ctx.db, 'breakerCoolDownMs', 500);
  await setSetting(ctx.db, 'breakerStableMs', 1000);
  spawnProcess('worker-1', 'src/workers/worker.ts');
  spawnProcess('worker-2', 'src/workers/worker.ts');
  spawnProcess('api', 'src/api/server.ts', { PORT: String(config.port) });
  apiUrl = `http://127.0.0.1:${config.port}`;
  await until('the api', async () => (await readyz()).status === 200);
}, 120_000);

afterAll(async () => {
  procs.killAll();
  if (ctx) await closeContext(ctx);
  await Promise.all([redis?.stop(), pg?.stop(), pouch?.stop()]);
});

let batch = 0;
/** Seeds, captures and readies `n` orgs of their own, starts a run, and returns once a quarter of them finished. */
const runUnderWay = (n: number) => underWay(ctx, (specs) => seedEstate(pouch.url, specs), procs, `f${++batch}`, n);
const assertRunRodeThrough = (orgs: Awaited<ReturnType<typeof runUnderWay>>['orgs'], runId: string) => rodeThrough(ctx, procs, orgs, runId);

describe('a store that goes away mid-run costs a pause, not failed orgs, dark orgs or dead processes', () => {
  it('workers are SIGKILLed mid-run (twice) and replaced, as a supervisor would', async () => {
    const { orgs, runId } = await runUnderWay(ORGS);
    for (const name of ['worker-1', 'worker-2']) {
      const i = processes.findIndex((p) => p.name === name);
      const [victim] = processes.splice(i, 1);
      victim.child.kill('SIGKILL');
      spawnProcess(`${name} (replacement)`, 'src/workers/worker.ts');
      await until('some more orgs done', async () => {
        const r = await getRun(ctx.db, runId);
        return r && r.orgs_finished >= ORGS / 2;
      });
    }
    await assertRunRodeThrough(orgs, runId);
  }, 180_000);

  /** A run under way; the store goes (and /readyz names it), stays away `ms`, comes back; the run carries on once it is back. */
  async function outage(store: string, take: () => Promise<void>, bring: () => Promise<void>, ms: number) {
    const { orgs, runId } = await runUnderWay(ORGS);
    await take();
    await until(`/readyz to name ${store}`, async () => {
      const r = await readyz();
      return r.status === 503 && r.body.failing?.includes(store);
    });
    await new Promise((r) => setTimeout(r, ms));
    await bring();
    await assertRunRodeThrough(orgs, runId);
  }

  it('Redis (queues and darklaunch) crashes and restarts from its append-only file 3 s later', async () => {
    await outage(
      'queue_redis',
      () => redis.crash(),
      () => redis.restart(),
      3000,
    );
    expect((await readyz()).status).toBe(200);
  }, 180_000);

  it('PostgreSQL crashes (immediate shutdown) and restarts 3 s later', async () => {
    await outage(
      'postgres',
      () => pg.crash(),
      () => pg.restart(),
      3000,
    );
    expect((await readyz()).status).toBe(200);
  }, 180_000);
});
