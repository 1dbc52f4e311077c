// The Redis and PostgreSQL the demo, the benchmarks and the test suite run
// on: the ones already reachable where they answer, else throwaway servers
// started here (dev/private-stores.ts) and stopped at the end. So `npm
// run demo` and `npm test` work on a machine where both are installed but
// not running.
import { Redis } from 'ioredis';
import pg from 'pg';
import { startPrivatePostgres, startPrivateRedis } from './private-stores.js';

/** Why the Redis at `url` does not answer a PING, or null if it does. */
export async function redisUnreachable(url: string): Promise<string | null> {
  const redis = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  let why: string | null = null;
  redis.on('error', (err: Error) => (why ??= err.message));
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (err) {
    return why ?? (err as Error).message;
  } finally {
    redis.disconnect();
  }
}

/** Why the PostgreSQL at `url` does not take a connection, or null if it does. */
export async function postgresUnreachable(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  let why: string | null = null;
  client.on('error', (err: Error) => (why ??= err.message));
  try {
    await client.connect();
    await client.end();
    return null;
  } catch (err) {
    return why ?? (err as Error).message;
  }
}

export interface Services {
  /** PostgreSQL's admin database, where per-run databases are created. */
  pgAdminUrl: string;
  /** Redis's base URL (no database index). */
  redisUrl: string;
  /** Stops the servers started here (none if both were reachable). */
  stop(): Promise<void>;
}

/**
 * Uses the Redis and PostgreSQL at these URLs where they answer; starts a
 * throwaway server (on a free port, data in a temporary folder) for each one
 * that does not, and says which.
 */
export async function ensureServices(want: { pgAdminUrl: string; redisUrl: string }, say: (s: string) => void): Promise<Services> {
  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => void (await Promise.all(started.map((s) => s.stop())));
  try {
    return await startMissing(want, say, started, stopAll);
  } catch (err) {
    // One started, the next not: the first must not outlive this call.
    await stopAll().catch((stopErr) => say(`could not stop a throwaway server: ${(stopErr as Error).message}`));
    throw err;
  }
}

async function startMissing(
  want: { pgAdminUrl: string; redisUrl: string },
  say: (s: string) => void,
  started: { stop(): Promise<void> }[],
  stopAll: () => Promise<void>,
): Promise<Services> {
  let { pgAdminUrl, redisUrl } = want;
  const noRedis = await redisUnreachable(redisUrl);
  if (noRedis) {
    const redis = await startPrivateRedis();
    started.push(redis);
    say(`no Redis at ${redisUrl} (${noRedis}): started a throwaway redis-server at ${redis.url}`);
    redisUrl = redis.url;
  }
  const noPostgres = await postgresUnreachable(pgAdminUrl);
  if (noPostgres) {
    const postgres = await startPrivatePostgres();
    started.push(postgres);
    say(`no PostgreSQL at ${pgAdminUrl.replace(/\/\/[^@]*@/, '//')} (${noPostgres}): started a throwaway cluster at ${postgres.url}`);
    pgAdminUrl = postgres.url;
  }
  return { pgAdminUrl, redisUrl, stop: stopAll };
}
