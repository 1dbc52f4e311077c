// Worker process entry: config, schema, workers, and a bounded graceful stop.
import { loadConfigOrExit } from '../config.js';
import { closeContext, createContext } from '../context.js';
import { migrate } from '../db/migrate.js';
import { createLogger } from '../log.js';
import { startFleet } from './fleet.js';

const config = loadConfigOrExit();
const log = createLogger(config.logLevel, 'mover-worker');
const ctx = createContext(config, log);

try {
  await migrate(ctx.db);
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'cannot prepare the database schema');
  process.exit(1);
}

// BullMQ loses jobs if Redis evicts keys; say so loudly (managed Redis may refuse CONFIG, which is fine).
ctx.queueRedis
  .config('GET', 'maxmemory-policy')
  .then((r) => {
    const policy = (r as string[])[1];
    if (policy && policy !== 'noeviction') log.warn({ maxmemory_policy: policy }, 'queue Redis should run with maxmemory-policy noeviction');
  })
  .catch(() => {});

const fleet = startFleet(ctx, { concurrency: config.workerConcurrency });
log.info({ concurrency: config.workerConcurrency, queue_prefix: config.queuePrefix, dry_run: config.dryRun }, 'worker started');

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'worker stopping: no new jobs; running ones get 25 s');
  await fleet.close(25_000);
  await closeContext(ctx);
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
