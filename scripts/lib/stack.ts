// Brings up an isolated mover stack on this machine for the demo and the
// benchmarks: a CouchDB (PouchDB Server in memory, or the real CouchDB
// BENCH_COUCHDB_URL names: scripts/lib/couch.ts), a fresh Postgres database,
// a Redis database index (leased as the tests lease theirs) and queue prefix of its own. The demo also starts
// throwaway Redis and PostgreSQL servers where none is reachable.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ensureServices as ensureServicesAt, postgresUnreachable, redisUnreachable } from '../../dev/services.js';
import type { Config } from '../../src/config.js';
import { seedDarklaunchDefaults } from '../../dev/estate.js';
import { couchChoice, startCouch, type BenchCouch, type CouchChoice } from './couch.js';

export interface Stack {
  config: Config;
  /** The CouchDB: its url (credentials in it where needed), version, account database, processes; stopped by dropAll. */
  couch: BenchCouch;
  dropAll(): Promise<void>;
}

let PG_ADMIN = process.env.MOVER_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
let REDIS = process.env.MOVER_REDIS_BASE_URL ?? 'redis://127.0.0.1:6379';

/** Uses the Redis and PostgreSQL already reachable, else throwaway ones (dev/services.ts); says which. */
export async function ensureServices(say: (s: string) => void): Promise<{ stop(): Promise<void> }> {
  const services = await ensureServicesAt({ pgAdminUrl: PG_ADMIN, redisUrl: REDIS }, say);
  PG_ADMIN = services.pgAdminUrl;
  REDIS = services.redisUrl;
  return services;
}

/** One line naming what is missing and how to start it, then exit 1. */
export async function checkServicesOrExit(): Promise<void> {
  if (await redisUnreachable(REDIS)) {
    console.error(`Redis is not reachable at ${REDIS}; start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`);
    process.exit(1);
  }
  if (await postgresUnreachable(PG_ADMIN)) {
    console.error(
      `PostgreSQL is not reachable at ${PG_ADMIN.replace(/\/\/[^@]*@/, '//')}; start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,
    );
    process.exit(1);
  }
}

/**
 * `couch`: which CouchDB to start or connect to (BENCH_COUCHDB_URL's choice
 * unless given), or one already checked (the demo's --couchdb), which
 * dropAll then stops as it says.
 */
export async function createStack(
  name: string,
  redisDb: number,
  overrides: Partial<Config> = {},
  opts: { couch?: CouchChoice | BenchCouch } = {},
): Promise<Stack> {
  // Chosen before anything is made: a BENCH_COUCHDB_URL that does not answer as a CouchDB admin exits here, leaving nothing behind.
  const want = opts.couch ?? (await couchChoice());
  // The CouchDB first: it is what fails to start, if anything does, before a database or a Redis index is touched.
  const couch = 'stop' in want ? want : await startCouch(want);
  const suffix = randomBytes(3).toString('hex');
  const dbName = `mover_${name}_${suffix}`;
  // The index asked for if no test holds it, else another free one.
  const redisLease = await leaseRedisDb(redisDb, `bench:${process.pid}:${dbName}`);
  const redisIndex = redisLease.db;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const r = new Redis(`${REDIS}/${redisIndex}`);
  await r.flushdb();
  await seedDarklaunchDefaults(r);
  await r.quit();
  const config: Config = {
    databaseUrl: PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`),
    redisUrl: `${REDIS}/${redisIndex}`,
    darklaunchRedisUrl: `${REDIS}/${redisIndex}`,
    couchdbUrl: couch.url,
    ...(couch.accountDb !== 'opscode_account' ? { couchdbAccountDb: couch.accountDb } : {}),
    apiToken: randomBytes(12).toString('hex'),
    port: 0,
    logLevel: process.env.LOG_LEVEL ?? 'silent',
    queuePrefix: `${name}-${suffix}`,
    workerConcurrency: 8,
    dryRun: false,
    storeOutageGraceMs: 60_000,
    jobLockMs: 30_000,
    ...overrides,
  };
  return {
    config,
    couch,
    async dropAll() {
      await couch.stop();
      const a = new pg.Client({ connectionString: PG_ADMIN });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await a.end();
      const rr = new Redis(`${REDIS}/${redisIndex}`);
      await rr.flushdb();
      await rr.quit();
      await redisLease.release();
    },
  };
}

/** Where the test harness and the benchmarks lease their Redis database indexes (test/support/harness.ts uses the same keys). */
const LEASE_KEY = (db: number) => `mover:test:redis-db:${db}`;
const LEASE_S = 1800;

/**
 * A Redis database index of this benchmark's own, `preferred` if it is free:
 * taken by the same lease key in database 0 that the test harness takes (SET
 * NX), renewed while the benchmark runs and released at the end. A test file
 * running meanwhile flushes the index it leases: without the lease a
 * benchmark's fences, flags and queues vanished under it (an org read twice,
 * or a fence gone).
 */
async function leaseRedisDb(preferred: number, owner: string): Promise<{ db: number; release(): Promise<void> }> {
  const admin = new Redis(`${REDIS}/0`);
  const candidates = [preferred, ...Array.from({ length: 15 }, (_, i) => i + 1).filter((d) => d !== preferred)];
  let db: number | undefined;
  for (const d of candidates) {
    if ((await admin.set(LEASE_KEY(d), owner, 'EX', LEASE_S, 'NX')) === 'OK') {
      db = d;
      break;
    }
  }
  if (db === undefined) {
    await admin.quit();
    throw new Error('no free Redis database index (1-15): tests hold them all; run the benchmark when they are done');
  }
  const held = db;
  // Only this benchmark's own lease is renewed or deleted: compare and act in one step.
  const ifOurs = (then: string) => `if redis.call('GET', KEYS[1]) == ARGV[1] then return ${then} end return 0`;
  const renew = setInterval(
    () => {
      admin
        .eval(ifOurs(`redis.call('EXPIRE', KEYS[1], ${LEASE_S})`), 1, LEASE_KEY(held), owner)
        .catch((err: Error) => console.error(`could not renew the lease of Redis database ${held}: ${err.message}`));
    },
    (LEASE_S * 1000) / 3,
  );
  renew.unref();
  return {
    db: held,
    async release() {
      clearInterval(renew);
      await admin.eval(ifOurs(`redis.call('DEL', KEYS[1])`), 1, LEASE_KEY(held), owner);
      await admin.quit();
    },
  };
}
