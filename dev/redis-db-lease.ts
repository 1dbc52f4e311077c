// Redis database indexes shared out on one Redis server by lease, so that
// test files, benchmarks and the demo running at once never flush each
// other's (docs/testing.md).
import { Redis } from 'ioredis';

/**
 * A Redis database index (1 to 15) of its own for a test harness, a
 * benchmark or the demo on a shared Redis: taken by a lease key in database 0
 * (SET NX), released at the end. Whoever holds an index may FLUSHDB it; a
 * fixed index, or a counter alone, handed one out again while another still
 * used it, and the new owner's FLUSHDB wiped the other's queues and flags. A
 * lease outlives a process that died without releasing it by at most its
 * expiry.
 */
const REDIS_DB_LEASE_S = 1800;
export async function allocateRedisDb(redisBaseUrl: string, owner: string): Promise<number> {
  const admin = new Redis(redisBaseUrl + '/0');
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const start = await admin.incr('mover:test:redis-db-counter');
      for (let i = 0; i < 15; i++) {
        const db = 1 + ((start + i) % 15);
        if ((await admin.set(`mover:test:redis-db:${db}`, owner, 'EX', REDIS_DB_LEASE_S, 'NX')) === 'OK') return db;
      }
      if (Date.now() > deadline) throw new Error('no free Redis database index (1-15) for a test harness in 2 minutes');
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await admin.quit();
  }
}

export async function releaseRedisDb(redisBaseUrl: string, db: number, owner: string): Promise<void> {
  const admin = new Redis(redisBaseUrl + '/0');
  try {
    // Only this harness's own lease: compare and delete in one step.
    await admin.eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, `mover:test:redis-db:${db}`, owner);
  } finally {
    await admin.quit();
  }
}
