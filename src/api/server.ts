// API process entry: config, schema, app, listen, and a clean stop.
import { boot } from '../boot.js';
import { closeContext } from '../context.js';
import { buildApp } from './app.js';

const ctx = await boot('mover-api');
const { config, log } = ctx;

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
