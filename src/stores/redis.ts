import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';

/** A lost connection emits an error on every reconnect attempt: the first is logged, then one a minute while it lasts. */
const ERROR_LOG_EVERY_MS = 60_000;

function logErrors(redis: Redis | Cluster, log: Logger, store: string, purpose: string): void {
  let last = 0;
  let suppressed = 0;
  redis.on('error', (err: Error) => {
    const now = Date.now();
    if (now - last < ERROR_LOG_EVERY_MS) {
      suppressed++;
      return;
    }
    log.warn({ store, connection: purpose, err: err.message, repeats_since_last: suppressed }, 'Redis connection error; ioredis reconnects by itself');
    last = now;
    suppressed = 0;
  });
  // Reset, so the next outage is logged at once.
  redis.on('ready', () => {
    if (last) log.info({ store, connection: purpose }, 'Redis connection ready again');
    last = 0;
    suppressed = 0;
  });
}

/**
 * Queue connections: BullMQ needs maxRetriesPerRequest: null on the
 * connections its workers block on. Errors surface through /readyz and job
 * failures; the connection itself never crashes the process.
 */
export function createQueueRedis(url: string, purpose: string, log: Logger, cluster = false): Redis | Cluster {
  if (cluster) {
    // The cluster's other nodes are found from this one; every connection BullMQ makes from it is a cluster client too.
    const u = new URL(url);
    const redisOptions = {
      maxRetriesPerRequest: null,
      connectionName: `mover-${purpose}`,
      ...(u.password ? { password: decodeURIComponent(u.password), username: u.username || undefined } : {}),
    };
    const client = new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
      redisOptions,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    });
    logErrors(client, log, 'queue_redis', purpose);
    return client;
  }
  const redis = new Redis(url, { maxRetriesPerRequest: null, connectionName: `mover-${purpose}` });
  logErrors(redis, log, 'queue_redis', purpose);
  return redis;
}

/**
 * The darklaunch connection retries a few times, then fails the command: a
 * flag write that hangs forever would hang an org in 503 with nobody told.
 */
export function createDarklaunchRedis(url: string, log: Logger): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 3, connectTimeout: 3000, connectionName: 'mover-darklaunch' });
  logErrors(redis, log, 'darklaunch_redis', 'darklaunch');
  return redis;
}
