// One isolated world per test file: its own CouchDB (PouchDB Server, the same
// behind the CouchDB 1.x proxy), or databases of its own in the Apache
// CouchDB COUCHDB_TEST_URL names, its own Postgres database, its own Redis
// database index and queue prefix. Files run in parallel and never see each
// other's data.
import { randomBytes } from 'node:crypto';
import { describe } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import { buildApp } from '../../src/api/app.js';
import type { Config } from '../../src/config.js';
import { closeContext, createContext, type Context } from '../../src/context.js';
import { migrate } from '../../src/db/migrate.js';
import { setSetting } from '../../src/db/settings.js';
import { dropEstate, hex32, seedDarklaunchDefaults, seedEstate, type OrgSpec, type SeededOrg } from '../../dev/estate.js';
import { startPouchServer } from '../../dev/pouch-server.js';
import { allocateRedisDb, releaseRedisDb } from '../../dev/redis-db-lease.js';
import { connectRealCouch, realCouchSource, TEST_URL_VAR } from '../../dev/couchdb-server.js';
import { createLogger } from '../../src/log.js';
import { startCouch1Proxy, type Couch1Proxy } from './couch1-proxy.js';
import { REAL_LABEL } from './couch-summary.js';
import type { Method, ReplyTo } from './replies.js';
import type { AccountView, RunStatus } from '../../src/cli/replies.js';
import { startFleet, type Fleet, type FleetOptions } from '../../src/workers/fleet.js';
import { waitFor } from './wait.js';

const PG_ADMIN = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_BASE = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TOKEN = 'test-token-not-secret';

/** Which CouchDB a harness gives mover (COUCH_KINDS). */
export type CouchKind = 'couchdb' | 'mango' | 'couch1';

/** The CouchDB server behind a harness: tests seed and inspect it directly, whatever mover talks through. */
export interface TestCouch {
  kind: CouchKind;
  /** The server itself, with credentials where it needs them (real CouchDB). */
  url: string;
  /** The account database (opscode_account, unless the server is shared: COUCHDB_TEST_URL). */
  accountDb: string;
  /** The org guids seeded (their chef_<guid> databases are deleted with the account database on a shared server). */
  seeded: Set<string>;
  /** Takes the server away for good (PouchDB Server; a shared CouchDB only loses this harness's databases). */
  stop(): Promise<void>;
}

export interface Harness {
  config: Config;
  ctx: Context;
  app: FastifyInstance;
  /** The CouchDB server itself (tests seed it directly, whichever way mover reaches it). */
  couchdb: TestCouch;
  /** The CouchDB 1.x proxy mover talks to, when the harness was made with couch: 'couch1'. */
  couch1?: Couch1Proxy;
  /** A new api process's view: the app rebuilt on fresh connections; the old one closed. */
  restartApi(): Promise<void>;
  redisDb: number;
  /** The test database's name (dropped at close). */
  dbName: string;
  /** A request to the api; body is its JSON reply, typed by method and URL (./replies.ts), or undefined when it is not JSON. */
  api<M extends Method, U extends string>(
    method: M,
    url: U,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: ReplyTo<M, U>; text: string }>;
  seed(specs: OrgSpec[]): Promise<SeededOrg[]>;
  /** A worker process's fleet, on its own connections (`config`: what differs from the harness's, e.g. a CouchDB behind a proxy). */
  startWorkers(opts?: Partial<FleetOptions>, config?: Partial<Config>): Fleet;
  /** A second process's view: its own connections to the same stores. */
  newContext(overrides?: Partial<Config>): Context;
  close(): Promise<void>;
}

/** The real CouchDB COUCHDB_TEST_URL names, or why there is none (then its variants are skipped). */
export const REAL_COUCH = realCouchSource();

/** The three CouchDBs every CouchDB-facing test runs against (describeEachCouch). */
export const COUCH_KINDS = [
  [REAL_LABEL, 'couchdb'],
  ['PouchDB Server (Mango, like CouchDB 2.x/3.x)', 'mango'],
  ['CouchDB 1.x (no Mango)', 'couch1'],
] as const;

/**
 * One describe per CouchDB kind; the real CouchDB's is skipped, saying why
 * in its title, where COUCHDB_TEST_URL is unset (test/support/couch-summary.ts
 * counts them at the end).
 */
export function describeEachCouch(title: string, fn: (kind: CouchKind) => void): void {
  for (const [label, kind] of COUCH_KINDS) {
    if (kind === 'couchdb' && REAL_COUCH.kind === 'none') describe.skip(`${title} on ${label} (skipped: ${REAL_COUCH.why})`, () => fn(kind));
    else describe(`${title} on ${label}`, () => fn(kind));
  }
}

export interface HarnessOptions {
  /** SQL run on the new database before mover's schema (a Chef Server database as it stands). */
  preloadSql?: string;
  /** Called after preloadSql, before mover's schema is applied. */
  beforeMigrate?: (db: Context['db']) => Promise<void>;
  /** Which CouchDB mover talks to: PouchDB Server as it is (Mango, like 2.x/3.x; the default), behind a proxy that acts as CouchDB 1.x, or Apache CouchDB 3.5 itself. */
  couch?: CouchKind;
  /** dl_default as the estate holds it before phase 2; by default spelled out as CouchDB ("true"). */
  dlDefault?: Record<string, string>;
}

/**
 * The CouchDB for one harness: PouchDB Server of its own, or the real
 * CouchDB COUCHDB_TEST_URL names, which parallel files and other runs share:
 * there the harness's account database is named for it (the file's name and
 * a random suffix; its orgs' guids are random too), and closing deletes it
 * and every org database seeded through the harness.
 */
async function startTestCouch(kind: CouchKind, name: string, suffix: string): Promise<TestCouch> {
  if (kind !== 'couchdb') {
    const pouch = await startPouchServer();
    return { kind, url: pouch.url, accountDb: 'opscode_account', seeded: new Set(), stop: () => pouch.stop() };
  }
  if (REAL_COUCH.kind === 'none') throw new Error(`a real-CouchDB variant ran without one: ${REAL_COUCH.why}`);
  const real = await connectRealCouch(REAL_COUCH.url, TEST_URL_VAR);
  // CouchDB database names: lower case letters, digits and _$()+-/ only, a letter first.
  const accountDb = `mover_t_${name.toLowerCase().replace(/[^a-z0-9_-]/g, '_')}_${suffix}_account`;
  const seeded = new Set<string>();
  return { kind, url: real.url, accountDb, seeded, stop: async () => void (await dropEstate(real.url, accountDb, [...seeded])) };
}

export async function createHarness(name: string, overrides: Partial<Config> = {}, opts: HarnessOptions = {}): Promise<Harness> {
  const suffix = randomBytes(4).toString('hex');
  const dbName = `mover_t_${name.replace(/\W/g, '_')}_${suffix}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();

  const redisDb = await allocateRedisDb(REDIS_BASE, `${process.pid}:${dbName}`);
  const flush = new Redis(`${REDIS_BASE}/${redisDb}`);
  await flush.flushdb();
  if (opts.dlDefault) {
    if (Object.keys(opts.dlDefault).length) await flush.hset('dl_default', opts.dlDefault);
  } else await seedDarklaunchDefaults(flush);
  await flush.quit();

  const couchdb = await startTestCouch(opts.couch ?? 'mango', name, suffix);
  const couch1 = opts.couch === 'couch1' ? await startCouch1Proxy(couchdb.url) : undefined;
  const databaseUrl = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
  const config: Config = {
    databaseUrl,
    redisUrl: `${REDIS_BASE}/${redisDb}`,
    darklaunchRedisUrl: `${REDIS_BASE}/${redisDb}`,
    couchdbUrl: couch1?.url ?? couchdb.url,
    ...(couchdb.accountDb !== 'opscode_account' ? { couchdbAccountDb: couchdb.accountDb } : {}),
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
    couchdb,
    couch1,
    redisDb,
    dbName,
    async restartApi() {
      await app.close();
      app = await buildApp(newContext());
    },
    async api<M extends Method, U extends string>(method: M, url: U, body?: unknown, headers: Record<string, string> = {}) {
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
      // The route's schema says what its reply holds (./replies.ts); the api serialized it by that schema.
      return { status: res.statusCode, body: parsed as ReplyTo<M, U>, text: res.body };
    },
    seed(specs) {
      // Guids chosen here and noted first: a seed that fails half-way still leaves its databases known to close().
      const withGuids = specs.map((s) => ({ ...s, guid: s.guid ?? hex32() }));
      for (const s of withGuids) couchdb.seeded.add(s.guid);
      return seedEstate(couchdb.url, withGuids, { accountDb: couchdb.accountDb });
    },
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
      await couchdb.stop();
      const a = new pg.Client({ connectionString: PG_ADMIN });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await a.end();
      const r = new Redis(`${REDIS_BASE}/${redisDb}`);
      await r.flushdb();
      await r.quit();
      await releaseRedisDb(REDIS_BASE, redisDb, `${process.pid}:${dbName}`);
    },
  };
}

// Where every test file has taken it from.
export { waitFor };

/**
 * Refreshes the account snapshot through the API and waits until it is
 * swapped in; the account as then read. The wait ends when the new snapshot
 * is in or the refresh failed, and the outcome is judged after it: a failed
 * refresh fails here at once, with its own error (thrown inside the wait, it
 * was only retried, and showed as a timeout 30 s later).
 */
export async function refreshAccount(h: Harness): Promise<AccountView> {
  const before = (await h.api('GET', '/account')).body.refreshed_at;
  const res = await h.api('POST', '/account/refresh');
  if (res.status !== 202) throw new Error(`refresh answered ${res.status}: ${res.text}`);
  let last: AccountView | undefined;
  const done = await waitFor(
    () => `the account refresh (needs a worker); last seen ${JSON.stringify(last)}`,
    async () => {
      last = (await h.api('GET', '/account')).body;
      // Idle on the snapshot from before: not swapped in yet, whatever the job's state says.
      return last.state === 'failed' || (last.state === 'idle' && last.refreshed_at && last.refreshed_at !== before) ? last : null;
    },
    30_000,
    100,
  );
  if (done.state === 'failed') throw new Error(`account refresh failed: ${done.error}`);
  return done;
}

/** Waits until the latest run of the type is no longer working or halting. */
export async function waitForRunEnd(h: Harness, type = 'phase_2_migration', timeoutMs = 60_000): Promise<RunStatus> {
  return waitFor(
    `${type} run to end`,
    async () => {
      const s = (await h.api('GET', `/migrations/${type}/status`)).body;
      // Over, in the operator's words (src/runs/run-state.ts).
      return ['completed', 'halted', 'failed'].includes(s.state) && s.run_id ? s : null;
    },
    timeoutMs,
  );
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
    org.expected
      .filter((e) => e.table === t)
      .map((e) => ({ id: e.id, name: e.name, authz_id: e.authzId }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  return { containers: pick('containers'), groups: pick('groups') };
}
