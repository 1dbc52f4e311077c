// The fault suite: real worker and api processes (as the Procfile starts
// them) over a private Redis, a private PostgreSQL and a CouchDB behind a
// proxy that can be cut; each store is crashed or cut mid-run and comes back.
// After each: every org of the run completed (rows exact, routed to SQL, up),
// none started, none dark, no process exited, and /readyz named the store
// while it was away.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { closeContext, createContext, type Context } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { getRun } from '../src/db/runs.js';
import { setSetting } from '../src/db/settings.js';
import { readyHolding } from '../src/db/state-tracker.js';
import { getOrgState } from '../src/db/org-states.js';
import { seedDarklaunchDefaults, seedEstate, type SeededOrg } from '../src/dev/estate.js';
import { freePort, startPouchServer, type PouchServer } from '../src/dev/pouch-server.js';
import { processEnv } from '../src/dev/processes.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { captureOrgs } from '../src/migration/capture.js';
import { startRun } from '../src/runs/manager.js';
import { expectedRows, sqlRows } from './support/harness.js';
import { startCutProxy, startPrivatePostgres, startPrivateRedis, type CutProxy, type PrivateServer } from '../src/dev/private-stores.js';

const T = 'phase_2_migration';
const ORGS = 40;

let redis: PrivateServer;
let pg: PrivateServer;
let pouch: PouchServer;
let couch: CutProxy;
let ctx: Context;
let config: Config;
let apiUrl: string;
const processes: { name: string; child: ChildProcess; log: () => string }[] = [];

function spawnProcess(name: string, entry: string, extra: Record<string, string> = {}) {
  const env = processEnv(config, {
    WORKER_CONCURRENCY: '4',
    STORE_OUTAGE_GRACE_MS: String(config.storeOutageGraceMs),
    JOB_LOCK_MS: String(config.jobLockMs),
    LOG_LEVEL: 'warn',
    ...extra,
  });
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  processes.push({ name, child, log: () => out });
  return child;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${processes.map((p) => `--- ${p.name}\n${p.log().slice(-3000)}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const readyz = async () => {
  const res = await fetch(`${apiUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as { failing?: string[] } };
};

beforeAll(async () => {
  [redis, pg, pouch] = await Promise.all([startPrivateRedis(), startPrivatePostgres(), startPouchServer()]);
  couch = await startCutProxy(Number(new URL(pouch.url).port));
  config = {
    databaseUrl: pg.url,
    redisUrl: redis.url,
    darklaunchRedisUrl: redis.url,
    couchdbUrl: couch.url,
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
  for (const p of processes) p.child.kill('SIGKILL');
  if (ctx) await closeContext(ctx);
  await Promise.all([redis?.stop(), pg?.stop(), couch?.close(), pouch?.stop()]);
});

let batch = 0;
/** Seeds, captures and readies `n` orgs of their own, starts a run, and returns once a quarter of them finished. */
async function runUnderWay(n: number): Promise<{ orgs: SeededOrg[]; runId: string }> {
  batch++;
  const orgs = await seedEstate(pouch.url, Array.from({ length: n }, (_, i) => ({ name: `f${batch}-org-${String(i).padStart(3, '0')}` })));
  await accountRefresh.process(ctx);
  const names = orgs.map((o) => o.name);
  expect((await captureOrgs(ctx.db, T, names)).inserted).toHaveLength(n);
  expect(await readyHolding(ctx.db, T, names)).toHaveLength(n);
  const { run } = await startRun(ctx, T, { count: 'all', concurrency: 6 });
  await until('a quarter of the run done', async () => ((await getRun(ctx.db, run.id))?.orgs_finished ?? 0) >= n / 4);
  return { orgs, runId: run.id };
}

/** Every org completed, exact, routed to SQL, up; the run ended with no failure; every process still running. */
async function assertRunRodeThrough(orgs: SeededOrg[], runId: string) {
  const run = await until('the run to end', async () => {
    const r = await getRun(ctx.db, runId);
    return r?.state === 'ready' ? r : null;
  }, 120_000);
  const states = await Promise.all(orgs.map(async (o) => `${o.name}:${(await getOrgState(ctx.db, T, o.name))?.state}`));
  expect({ finished: run.orgs_finished, failed: run.orgs_failed, skipped: run.orgs_skipped, breaker: run.breaker }, `${states.join(' ')}\n${processes.map((p) => `--- ${p.name}\n${p.log().slice(-4000)}`).join('\n')}`).toEqual({
    finished: orgs.length,
    failed: 0,
    skipped: 0,
    breaker: 'closed',
  });
  for (const org of orgs) {
    expect((await getOrgState(ctx.db, T, org.name))?.state, org.name).toBe('completed');
    expect(await ctx.darklaunchRedis.hgetall(`dl_org_${org.name}`), org.name).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    expect(await sqlRows({ ctx }, org.guid), org.name).toEqual(expectedRows(org));
  }
  for (const p of processes) expect({ name: p.name, exit: p.child.exitCode, signal: p.child.signalCode }).toEqual({ name: p.name, exit: null, signal: null });
}

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

  /** A run under way; the store goes (and /readyz names it), stays away `ms`, comes back; the run rides through. */
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
    await outage('queue_redis', () => redis.crash(), () => redis.restart(), 3000);
    expect((await readyz()).status).toBe(200);
  }, 180_000);

  it('PostgreSQL crashes (immediate shutdown) and restarts 3 s later', async () => {
    await outage('postgres', () => pg.crash(), () => pg.restart(), 3000);
    expect((await readyz()).status).toBe(200);
  }, 180_000);

  it('CouchDB is unreachable for 5 s', async () => {
    await outage('couchdb', () => couch.down(), () => couch.up(), 5000);
  }, 180_000);
});
