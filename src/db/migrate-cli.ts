// npm run db:migrate — applies the schema; needs only DATABASE_URL.
import { ConfigError, loadConfig } from '../config.js';
import { createPool } from '../stores/postgres.js';
import { migrate } from './migrate.js';

let databaseUrl: string;
try {
  // Only DATABASE_URL matters here; the rest are filled so the shared parser checks it the same way.
  databaseUrl = loadConfig({ REDIS_URL: 'redis://unused', COUCHDB_URL: 'http://unused', MOVER_API_TOKEN: 'unused', DATABASE_URL: process.env.DATABASE_URL }).databaseUrl;
} catch (err) {
  process.stderr.write(`config error: ${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(1);
}
const db = createPool(databaseUrl, 1);
try {
  const applied = await migrate(db);
  process.stdout.write(applied.length ? `applied migrations: ${applied.join(', ')}\n` : 'schema is up to date\n');
} catch (err) {
  process.stderr.write(`db:migrate failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.end();
}
