// Worker process entry: config, schema, workers, and a bounded graceful stop.
import { boot } from '../boot.js';
import { closeContext } from '../context.js';
import { startFleet } from './fleet.js';
import { serveMetrics } from './metrics-server.js';

const ctx = await boot('mover-worker');
const { config, log } = ctx;

// BullMQ loses jobs if Redis evicts keys; say so loudly (managed Redis may refuse CONFIG, which is fine).
ctx.queueRedis
  .config('GET', 'maxmemory-policy')
  .then((r) => {
    const policy = (r as string[])[1];
    if (policy && policy !== 'noeviction') log.warn({ maxmemory_policy: policy }, 'queue Redis should run with maxmemory-policy noeviction');
  })
  .catch((err) => log.debug({ err: (err as Error).message }, 'could not read the queue Redis maxmemory-policy (CONFIG refused?)'));

const fleet = startFleet(ctx, { concurrency: config.workerConcurrency });
const metricsServer = config.metricsPort ? serveMetrics(config.metricsPort, log) : undefined;
log.info({ concurrency: config.workerConcurrency, queue_prefix: config.queuePrefix, dry_run: config.dryRun }, 'worker started');

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'worker stopping: no new jobs; running ones get 25 s');
  metricsServer?.close();
  await fleet.close(25_000);
  await closeContext(ctx);
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
