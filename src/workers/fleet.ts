// The workers of one process: one BullMQ worker per job kind, plus the
// reconciler. Any number of processes on any number of machines may run this
// at once; they coordinate only through Redis and Postgres.
import { Worker, type Job } from 'bullmq';
import type { Context } from '../context.js';
import { bullPrefix } from '../config.js';
import { errorMessage } from '../errors.js';
import { settleAll } from '../log.js';
import { JOB_KINDS } from '../jobs/index.js';
import { createQueueRedis } from '../stores/redis.js';
import { reconcileOnce } from './reconciler.js';
import { advancePhases } from '../phases/driver.js';
import { checkBreakers } from '../frame/breaker.js';
import { activeRuns, effectiveConcurrency, type RunRow } from '../db/runs.js';
import { SAMPLE_EVERY_MS, sampleRuns } from '../runs/series.js';
import { guardRuns } from '../runs/couchdb-guard.js';

export interface FleetOptions {
  concurrency: number;
  reconcileEveryMs?: number;
  /** How often this process looks for phase steps to advance. */
  phaseTickMs?: number;
  lockDurationMs?: number;
  /** How often this process looks after runs whose breaker is open and fits its per-org slots to the runs' concurrency (one read of the active runs serves both). */
  breakerTickMs?: number;
}

export interface Fleet {
  workers: Worker[];
  /** Stops taking jobs; waits up to timeoutMs for running ones, then hands them back (they stall and are re-delivered). */
  close(timeoutMs?: number): Promise<void>;
}

export function startFleet(ctx: Context, opts: FleetOptions): Fleet {
  const workers: Worker[] = [];
  const connections: ReturnType<typeof createQueueRedis>[] = [];
  const lockDuration = opts.lockDurationMs ?? ctx.config.jobLockMs ?? 30_000;
  // The stall check runs as often as a lock lasts: a killed worker's jobs go back to the queue within about two lock lengths.
  const common = { prefix: bullPrefix(ctx.config), lockDuration, stalledInterval: lockDuration, maxStalledCount: 1 };
  const add = (name: string, concurrency: number, processor: (job: Job, token?: string) => Promise<unknown>) => {
    // Its own connection: a worker blocks on it while waiting for jobs.
    const connection = createQueueRedis(ctx.config.redisUrl, `worker-${name}`, ctx.log, ctx.config.redisCluster);
    connections.push(connection);
    const w = new Worker(name, processor, { ...common, concurrency, connection });
    w.on('error', (err) => ctx.log.error({ queue: name, err: err.message }, 'worker error'));
    w.on('failed', (job, err) =>
      ctx.log.error({ queue: name, job_id: job?.id, org_name: job?.data?.orgName, migration_type: name, err: err.message }, 'job failed'),
    );
    workers.push(w);
  };

  for (const kind of Object.values(JOB_KINDS)) add(kind.type, kind.slotsPerProcess ?? opts.concurrency, (job, token) => kind.process(ctx, job, token));
  const fitted = workers.filter((w) => JOB_KINDS[w.name]?.slotsPerProcess === undefined);

  const timers = [
    every(
      opts.reconcileEveryMs ?? 10_000,
      () => reconcileOnce(ctx),
      (err) => ctx.log.error({ err: errorMessage(err) }, 'reconciler pass failed'),
    ),
    every(
      opts.phaseTickMs ?? 1000,
      () => advancePhases(ctx),
      (err) => ctx.log.error({ err: errorMessage(err) }, 'phase driver pass failed'),
    ),
    every(
      SAMPLE_EVERY_MS,
      () => sampleRuns(ctx),
      (err) => ctx.log.error({ err: errorMessage(err) }, 'run series sample failed'),
    ),
    every(
      opts.breakerTickMs ?? 2000,
      () => checkRuns(ctx, fitted, opts.concurrency),
      (err) => ctx.log.error({ err: errorMessage(err) }, 'run check pass (slots, breakers, live-service guard) failed'),
    ),
  ];

  return {
    workers,
    async close(timeoutMs = 30_000) {
      timers.forEach(clearInterval);
      const graceful = Promise.all(workers.map((w) => w.close()));
      const timedOut = await Promise.race([graceful.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs).unref())]);
      if (timedOut) {
        ctx.log.warn({ timeout_ms: timeoutMs }, 'running jobs did not finish in time; handing them back');
        await Promise.all(workers.map((w) => w.close(true)));
      }
      await settleAll(
        ctx.log,
        'closing a worker connection',
        connections.map((c) => c.quit()),
      );
    },
  };
}

/**
 * A process takes no more of a type's jobs at once than its run lets be in
 * flight fleet-wide (and at most its own slots): a job beyond the run's
 * concurrency only finds the gate closed and waits again (AT_CAPACITY_RETRY_MS),
 * so idle slots would cost a claim and a few Redis calls each, every second.
 * With no run of the type active the slots stay as they are.
 */
function fitSlots(ctx: Context, workers: Worker[], most: number, runs: RunRow[]): void {
  for (const w of workers) {
    const mine = runs.filter((r) => r.migration_type === w.name && r.state === 'working');
    if (!mine.length) continue;
    const slots = Math.min(most, Math.max(1, ...mine.map(effectiveConcurrency)));
    if (w.concurrency !== slots) {
      ctx.log.info({ migration_type: w.name, slots, was: w.concurrency }, 'worker slots fitted to the run concurrency');
      w.concurrency = slots;
    }
  }
}

/** The kinds whose runs the live-service guard may slow: those paced by the sleep time (the per-org migrations). */
const PACED = new Set(Object.values(JOB_KINDS).flatMap((k) => (k.run?.paced ? [k.type] : [])));

/** This process's slots, then the runs' breakers, then the live-service guard, from one read of the active runs. */
async function checkRuns(ctx: Context, fitted: Worker[], most: number): Promise<void> {
  const runs = await activeRuns(ctx.db);
  // First, so a breaker check that fails or runs long never keeps the slots from being fitted.
  fitSlots(ctx, fitted, most, runs);
  await checkBreakers(ctx, JOB_KINDS, runs);
  await guardRuns(ctx, runs, PACED);
}

/** A timer that never overlaps itself: a slow pass skips the ticks it runs over. */
function every(ms: number, fn: () => Promise<unknown>, onError: (err: unknown) => void): NodeJS.Timeout {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await fn();
    } catch (err) {
      onError(err);
    } finally {
      busy = false;
    }
  };
  // A timer does not wait on its callback's promise; tick hands fn's failure to onError.
  const t = setInterval(() => void tick(), ms);
  t.unref();
  return t;
}
