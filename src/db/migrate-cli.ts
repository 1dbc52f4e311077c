import { loadConfigOrExit } from '../config.js';
import { createPool } from '../stores/postgres.js';
import { migrate } from './migrate.js';

const config = loadConfigOrExit();
const db = createPool(config.databaseUrl, 1);
try {
  const applied = await migrate(db);
  process.stdout.write(applied.length ? `applied migrations: ${applied.join(', ')}\n` : 'schema is up to date\n');
} catch (err) {
  process.stderr.write(`db:migrate failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.end();
}
