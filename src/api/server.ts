// API process entry: config, schema, app, listen, and a clean stop.
import { loadConfigOrExit } from '../config.js';
import { closeContext, createContext } from '../context.js';
import { migrate } from '../db/migrate.js';
import { createLogger } from '../log.js';
import { buildApp } from './app.js';

const config = loadConfigOrExit();
const log = createLogger(config.logLevel, 'mover-api');
const ctx = createContext(config, log);

try {
  await migrate(ctx.db);
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'cannot prepare the database schema');
  process.exit(1);
}

const app = await buildApp(ctx);
await app.listen({ host: '0.0.0.0', port: config.port });

async function stop(signal: string) {
  log.info({ signal }, 'api stopping');
  await app.close();
  await closeContext(ctx);
  process.exit(0);
}
process.once('SIGTERM', () => void stop('SIGTERM'));
process.once('SIGINT', () => void stop('SIGINT'));
