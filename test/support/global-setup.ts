// Before any test file: the real CouchDB COUCHDB_TEST_URL names, checked
// once (one that does not answer as a CouchDB admin stops the suite with one
// line, rather than failing every file or skipping quietly), and the Redis
// and PostgreSQL the suite runs on. Where the
// usual ones (TEST_REDIS_URL, TEST_PG_ADMIN_URL, or 127.0.0.1's defaults)
// answer, they are used; where one does not, a throwaway server is started,
// as the demo does (dev/services.ts), and stopped after the last file.
// Test files read the URLs from the environment, which their processes inherit.
import { connectRealCouch, maskCredentials, realCouchSource, TEST_URL_VAR } from '../../dev/couchdb-server.js';
import { ensureServices } from '../../dev/services.js';

export default async function setup(): Promise<() => Promise<void>> {
  const real = realCouchSource();
  if (real.kind === 'url') {
    const couch = await connectRealCouch(real.url, TEST_URL_VAR).catch((err: Error) => {
      // The message is the whole story (what is wrong with the URL, and how to mend it). Thrown, vitest would print
      // "No test files found" above it and a stack under it; nothing has started yet, so this ends the run here.
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    });
    process.stdout.write(`real CouchDB: ${couch.version} at ${maskCredentials(real.url)} (${TEST_URL_VAR}); its test variants run there\n`);
  } else process.stdout.write(`real CouchDB: ${real.why}; its test variants are skipped\n`);
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
