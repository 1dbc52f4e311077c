// Before any test file: the Redis and PostgreSQL the suite runs on. Where the
// usual ones (TEST_REDIS_URL, TEST_PG_ADMIN_URL, or 127.0.0.1's defaults)
// answer, they are used; where one does not, a throwaway server is started,
// as the demo does (src/dev/services.ts), and stopped after the last file.
// Test files read the URLs from the environment, which their processes inherit.
import { ensureServices } from '../../src/dev/services.js';

export default async function setup(): Promise<() => Promise<void>> {
  const services = await ensureServices(
    {
      pgAdminUrl: process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      redisUrl: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    },
    (line) => process.stdout.write(`${line}\n`),
  );
  process.env.TEST_PG_ADMIN_URL = services.pgAdminUrl;
  process.env.TEST_REDIS_URL = services.redisUrl;
  return () => services.stop();
}
