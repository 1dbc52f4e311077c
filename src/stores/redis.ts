import { Redis } from 'ioredis';

/**
 * Queue connections: BullMQ needs maxRetriesPerRequest: null on the
 * connections its workers block on.
 */
export function createQueueRedis(url: string, purpose: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, connectionName: `mover-${purpose}` });
  redis.on('error', () => {}); // surfaced through readyz and job failures, not as crashes
  return redis;
}

/**
 * The darklaunch connection retries a few times, then fails the command: a
 * flag write that hangs forever would hang an org in 503 with nobody told.
 */
export function createDarklaunchRedis(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 3, connectTimeout: 3000, connectionName: 'mover-darklaunch' });
  redis.on('error', () => {});
  return redis;
}
