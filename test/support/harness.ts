// One isolated world per test file: its own PouchDB Server, its own Postgres
// database, its own Redis database index and queue prefix. Files run in
// parallel and never see each other's data.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import { buildApp } from '../../src/api/app.js';
import type { Config } from '../../src/config.js';
import { closeContext, createContext, type Context } from '../../src/context.js';
import { migrate } from '../../src/db/migrate.js';
import { setSetting } from '../../src/db/settings.js';
import { seedDarklaunchDefaults, seedEstate, type OrgSpec, type SeededOrg } from '../../src/dev/estate.js';
import { startPouchServer, type PouchServer } from '../../src/dev/pouch-server.js';
import { createLogger } from '../../src/log.js';
import { startCouch1Proxy, type Couch1Proxy } from './couch1-proxy.js';
import { startFleet, type Fleet, type FleetOptions } from '../../src/workers/fleet.js';

const PG_ADMIN = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_BASE = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TOKEN = 'test-token-not-secret';

export interface Harness {
  config: Config;
  ctx: Context;
  app: FastifyInstance;
  /** PouchDB Server itself (tests seed it directly, whichever CouchDB mover is given). */
  pouch: PouchServer;
  /** The CouchDB 1.x proxy mover talks to, when the harness was made with couch: 'couch1'. */
  couch1?: Couch1Proxy;
  /** A new api process's view: the app rebuilt on fresh connections; the old one closed. */
  restartApi(): Promise<void>;
  redisDb: number;
  /** The test database's name (dropped at close). */
  dbName: string;
  api(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; text: string }>;
  seed(specs: OrgSpec[]): Promise<SeededOrg[]>;
  /** A worker process's fleet, on its own connections (`config`: what differs from the harness's, e.g. a CouchDB behind a proxy). */
  startWorkers(opts?: Partial<FleetOptions>, config?: Partial<Config>): Fleet;
  /** A second process's view: its own connections to the same stores. */
  newContext(overrides?: Partial<Config>): Context;
  close(): Promise<void>;
}

async function allocateRedisDb(): Promise<number> {
  const admin = new Redis(REDIS_BASE + '/0');
  const n = await admin.incr('mover:test:redis-db-counter');
  await admin.quit();
  return 1 + (n % 15);
}

/** The two kinds of CouchDB every CouchDB-facing test runs against, for describe.each. */
export const COUCH_KINDS = [
  ['CouchDB 2.x/3.x (Mango)', 'mango'],
  ['CouchDB 1.x (no Mango)', 'couch1'],
] as const;

export interface HarnessOptions {
  /** SQL run on the new database before mover's schema (a Chef Server database as it stands). */
  preloadSql?: string;
  /** Called after preloadSql, before mover's schema is applied. */
  beforeMigrate?: (db: Context['db']) => Promise<void>;
  /** Which CouchDB mover talks to: PouchDB Server as it is (Mango, like 2.x/3.x), or behind a proxy that acts as CouchDB 1.x. */
  couch?: 'mango' | 'couch1';
}

export async function createHarness(name: string, overrides: Partial<Config> = {}, opts: HarnessOptions = {}): Promise<Harness> {
  const suffix = randomBytes(4).toString('hex');
  const dbName = `mover_t_${name.replace(/\W/g, '_')}_${suffix}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();

  const redisDb = await allocateRedisDb();
  const flush = new Redis(`${REDIS_BASE}/${redisDb}`);
  await flush.flushdb();
  await seedDarklaunchDefaults(flush);
  await flush.quit();

  const pouch = await startPouchServer();
  const couch1 = opts.couch === 'couch1' ? await startCouch1Proxy(pouch.url) : undefined;
  const databaseUrl = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
  const config: Config = {
    databaseUrl,
    redisUrl: `${REDIS_BASE}/${redisDb}`,
    darklaunchRedisUrl: `${REDIS_BASE}/${redisDb}`,
    couchdbUrl: couch1?.url ?? pouch.url,
    apiToken: TOKEN,
    port: 0,
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    queuePrefix: `t-${name}-${suffix}`,
    workerConcurrency: 4,
    dryRun: false,
    // Short: a test that takes a store away should not wait a minute for it (test/faults.test.ts sets its own).
    storeOutageGraceMs: 1500,
    jobLockMs: 30_000,
    ...overrides,
  };
  const log = createLogger(config.logLevel, `test-${name}`);
  const contexts: Context[] = [];
  const newContext = (o: Partial<Config> = {}) => {
    const c = createContext({ ...config, ...o }, log);
    contexts.push(c);
    return c;
  };
  const ctx = newContext();
  if (opts.preloadSql) await ctx.db.query(opts.preloadSql);
  if (opts.beforeMigrate) await opts.beforeMigrate(ctx.db);
  await migrate(ctx.db);
  // No Chef API writes into the test estates: no drain wait, unless a test sets one.
  await setSetting(ctx.db, 'drainWaitMs', 0);
  let app = await buildApp(ctx);
  const fleets: Fleet[] = [];

  return {
    config,
    ctx,
    get app() {
      return app;
    },
    pouch,
    couch1,
    redisDb,
    dbName,
    async restartApi() {
      await app.close();
      app = await buildApp(newContext());
    },
    async api(method, url, body, headers = {}) {
      const res = await app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${TOKEN}`, ...headers },
        ...(body === undefined ? {} : typeof body === 'string' ? { payload: body } : { payload: body as object }),
      });
      let parsed: unknown;
      try {
        parsed = JSON.parse(res.body);
      } catch {
        parsed = undefined;
      }
      return { status: res.statusCode, body: parsed, text: res.body };
    },
    seed: (specs) => seedEstate(pouch.url, specs),
    startWorkers(opts = {}, o = {}) {
      const fleet = startFleet(newContext(o), { concurrency: 4, reconcileEveryMs: 500, breakerTickMs: 250, ...opts });
      fleets.push(fleet);
      return fleet;
    },
    newContext,
    async close() {
      const dbg = (m: string) => process.env.TEST_DEBUG_CLOSE && console.log(new Date().toISOString(), m);
      await Promise.allSettled(fleets.map((f) => f.close(5000)));
      dbg('fleets closed');
      await app.close();
      dbg('app closed');
      await Promise.allSettled(contexts.map(closeContext));
      dbg('contexts closed');
      await couch1?.close();
      await pouch.stop();
      const a = new pg.Client({ connectionString: PG_ADMIN });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await a.end();
      const r = new Redis(`${REDIS_BASE}/${redisDb}`);
      await r.flushdb();
      await r.quit();
    },
  };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Refreshes the account snapshot through the API and waits until it is swapped in. */
export async function refreshAccount(h: Harness): Promise<any> {
  const before = (await h.api('GET', '/account')).body.refreshedAt;
  const res = await h.api('POST', '/account/refresh');
  if (res.status !== 202) throw new Error(`refresh answered ${res.status}`);
  return waitFor('account refresh', async () => {
    const a = (await h.api('GET', '/account')).body;
    if (a.state === 'failed') throw new Error('refresh failed');
    return a.state === 'idle' && a.refreshedAt && a.refreshedAt !== before ? a : null;
  });
}

/** Waits until the latest run of the type is no longer working or halting. */
export async function waitForRunEnd(h: Harness, type = 'phase_2_migration', timeoutMs = 60_000): Promise<any> {
  return waitFor(`${type} run to end`, async () => {
    const s = (await h.api('GET', `/migrations/${type}/status`)).body;
    return s.state === 'ready' && s.runId ? s : null;
  }, timeoutMs);
}

/** Every SQL row of one org, by table. */
export async function sqlRows(h: { ctx: Pick<Context, 'db'> }, guid: string) {
  const c = await h.ctx.db.query(`SELECT id, name, authz_id FROM containers WHERE org_id = $1 ORDER BY id`, [guid]);
  const g = await h.ctx.db.query(`SELECT id, name, authz_id FROM "groups" WHERE org_id = $1 ORDER BY id`, [guid]);
  return { containers: c.rows, groups: g.rows };
}

/** What SQL should hold for a seeded org, in the same shape as sqlRows. */
export function expectedRows(org: SeededOrg) {
  const pick = (t: 'containers' | 'groups') =>
    org.expected.filter((e) => e.table === t).map((e) => ({ id: e.id, name: e.name, authz_id: e.authzId })).sort((a, b) => (a.id < b.id ? -1 : 1));
  return { containers: pick('containers'), groups: pick('groups') };
}
