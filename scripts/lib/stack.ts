// Brings up an isolated mover stack on this machine for the demo and the
// benchmarks: a PouchDB Server (CouchDB protocol), a fresh Postgres database,
// a Redis database index and queue prefix of its own.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Config } from '../../src/config.js';
import { startPouchServer, type PouchServer } from '../../src/dev/pouch-server.js';
import { seedDarklaunchDefaults } from '../../src/dev/estate.js';

export interface Stack {
  config: Config;
  pouch: PouchServer;
  dropAll(): Promise<void>;
}

const PG_ADMIN = process.env.MOVER_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS = process.env.MOVER_REDIS_BASE_URL ?? 'redis://127.0.0.1:6379';

/** One line naming what is missing and how to start it, then exit 1. */
export async function checkServicesOrExit(): Promise<void> {
  const redis = new Redis(REDIS, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch {
    console.error(`Redis is not reachable at ${REDIS}; start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`);
    process.exit(1);
  } finally {
    redis.disconnect();
  }
  const client = new pg.Client({ connectionString: PG_ADMIN, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
  } catch {
    console.error(`PostgreSQL is not reachable at ${PG_ADMIN.replace(/\/\/[^@]*@/, '//')}; start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`);
    process.exit(1);
  }
}

export async function createStack(name: string, redisDb: number, overrides: Partial<Config> = {}): Promise<Stack> {
  const suffix = randomBytes(3).toString('hex');
  const dbName = `mover_${name}_${suffix}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const r = new Redis(`${REDIS}/${redisDb}`);
  await r.flushdb();
  await seedDarklaunchDefaults(r);
  await r.quit();
  const pouch = await startPouchServer();
  const config: Config = {
    databaseUrl: PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`),
    redisUrl: `${REDIS}/${redisDb}`,
    darklaunchRedisUrl: `${REDIS}/${redisDb}`,
    couchdbUrl: pouch.url,
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
    pouch,
    async dropAll() {
      await pouch.stop();
      const a = new pg.Client({ connectionString: PG_ADMIN });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await a.end();
      const rr = new Redis(`${REDIS}/${redisDb}`);
      await rr.flushdb();
      await rr.quit();
    },
  };
}
