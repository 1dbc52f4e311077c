// Everything a process holds open to the stores, built once at start and
// closed once at shutdown. The api and the workers share this shape.
import type { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { bullPrefix, type Config } from './config.js';
import { Darklaunch } from './darklaunch.js';
import { QUEUE_NAMES } from './queue-names.js';
import { settleAll } from './log.js';
import { createQueues } from './queues.js';
import { Couch } from './stores/couch.js';
import { createPool, type Db } from './stores/postgres.js';
import { createDarklaunchRedis, createQueueRedis } from './stores/redis.js';

export interface Context {
  config: Config;
  log: Logger;
  db: Db;
  couch: Couch;
  queueRedis: Redis | Cluster;
  darklaunchRedis: Redis;
  darklaunch: Darklaunch;
  /** One queue per job kind, by its name (src/jobs/index.ts). */
  queues: Record<string, Queue>;
}

/**
 * A per-org job holds no connection while it waits (its lease is a row,
 * src/frame/org-lease.ts): connections are for statements in progress, a
 * few milliseconds of each org's seconds, and how many are in progress
 * follows the fleet's throughput, which the CPU bounds, not its slots
 * (bench:pacing counts the connections in use: 50 for 3 workers and an api
 * at concurrency 150 and 300). An eighth of the slots plus room for the
 * reconciler, phase driver and breaker check, at most 16: 3 worker
 * processes and an api stay well under Postgres's default 100 connections.
 */
export const poolSize = (workerConcurrency: number) => Math.min(16, Math.max(10, Math.ceil(workerConcurrency / 8) + 8));

export function createContext(config: Config, log: Logger, opts: { dbPoolSize?: number } = {}): Context {
  const outage = { graceMs: config.storeOutageGraceMs, log };
  const queueRedis = createQueueRedis(config.redisUrl, 'queues', log, config.redisCluster);
  const darklaunchRedis = createDarklaunchRedis(config.darklaunchRedisUrl, log);
  return {
    config,
    log,
    db: createPool(config.databaseUrl, outage, opts.dbPoolSize ?? poolSize(config.workerConcurrency)),
    couch: new Couch(config.couchdbUrl, outage, config.couchdbAccountDb),
    queueRedis,
    darklaunchRedis,
    darklaunch: new Darklaunch(darklaunchRedis, outage, config.dryRun),
    queues: createQueues(queueRedis, bullPrefix(config), log, QUEUE_NAMES),
  };
}

export async function closeContext(ctx: Context): Promise<void> {
  await settleAll(
    ctx.log,
    'closing a queue',
    Object.values(ctx.queues).map((q) => q.close()),
  );
  await settleAll(ctx.log, 'closing a store connection', [ctx.db.end(), ctx.queueRedis.quit(), ctx.darklaunchRedis.quit()]);
}
