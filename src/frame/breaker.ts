// A run's circuit breakers (docs/architecture.md, "Riding through store faults").
//
// Infrastructure: a store call that stayed unreachable past the grace opens
// the run's breaker. The run pauses (its queue is paused fleet-wide and no
// claim starts an org; orgs in flight finish or are put back), and every
// process's breaker check probes the stores: after the cool-down, all answering →
// half-open; still answering after the stable time → the orgs that failed
// because of the fault go back to ready in the run, the queue resumes, the
// breaker closes. A probe that fails on the way sends it back to open. An
// operator's halt ends it like any run.
//
// Data: when more than a settable share of the run's last finished orgs failed
// on their data, the run halts itself (a bug that fails every org must not
// take 100,000 orgs dark one after the other); an operator looks.
import type { Logger } from 'pino';
import type { Context } from '../context.js';
import * as breakers from '../db/breakers.js';
import { finishRunIfDone, getRun, type RunRow } from '../db/runs.js';
import { cachedSettings, getSettings } from '../db/settings.js';
import { tryLock } from '../db/advisory-lock.js';
import { errorMessage } from '../errors.js';
import type { JobKind } from './kind.js';
import { checkStores } from '../stores/health.js';
import { DEFAULT_KEY, keyTypeEffect, OVERRIDE_KEY } from '../chef-routing.js';
import { haltFleet } from './halt.js';
import { setTimeout as sleep } from 'node:timers/promises';

const PAUSE_WAIT_MS = 1000;

/**
 * A job hit an infrastructure error that outlasted the grace: the run's
 * breaker opens and its queue pauses. Never throws (the job goes on to put
 * its org back); a failure to record it is logged here, once.
 */
export async function tripOnFault(ctx: Context, log: Logger, type: string, runId: string, reason: string): Promise<void> {
  try {
    if (await breakers.openBreaker(ctx.db, runId, 'infrastructure', reason)) {
      log.error({ migration_type: type, run_id: runId, reason }, 'breaker open: the run pauses until every store answers again');
    }
    // Pausing the queue only saves deliveries (a claim already refuses to start an org while the
    // breaker is open), so it is not waited for longer than a moment: the queue Redis may be the store that is down.
    const queue = ctx.queues[type];
    if (queue) await Promise.race([queue.pause(), sleep(PAUSE_WAIT_MS)]);
  } catch (err) {
    log.error(
      { migration_type: type, run_id: runId, reason, err: errorMessage(err) },
      'could not open the breaker (a store is down); the reconciler and the next job will try again',
    );
  }
}

/** After an org failed on its data: halts the run if too many of its last finished orgs did. Never throws. */
export async function checkFailureBreaker(ctx: Context, log: Logger, type: string, runId: string): Promise<void> {
  try {
    const { failureBreakerShare: share, failureBreakerWindow: window } = await cachedSettings(ctx);
    const { finished, failed } = await breakers.recentDataFailures(ctx.db, runId, window);
    if (finished < window || failed / finished <= share) return;
    const reason = `failure breaker: ${failed} of the last ${finished} finished orgs failed on their data (more than ${Math.round(share * 100)}%); look at their fail_detail before starting again`;
    // Opening it halts the run in the same statement; haltFleet then drains the waiting jobs and ends it once nothing is in flight.
    if (await breakers.openBreaker(ctx.db, runId, 'data', reason))
      log.error({ migration_type: type, run_id: runId, failed, finished }, 'failure breaker open: run halted');
    await haltFleet(ctx, type, runId, reason, true);
  } catch (err) {
    log.error({ migration_type: type, run_id: runId, err: errorMessage(err) }, 'could not check the failure breaker');
  }
}

/** One pass of the breaker check, in every worker process (a per-run advisory lock lets one act); `kinds` by type (src/jobs/index.ts), `runs` the active runs as just read. */
export async function checkBreakers(ctx: Context, kinds: Readonly<Record<string, JobKind>>, runs: RunRow[]): Promise<void> {
  await alignQueues(ctx, runs);
  // Tripped by a store fault: a data-failure breaker waits for the operator.
  for (const tripped of runs.filter((r) => r.state === 'working' && r.breaker !== 'closed' && r.breaker_kind === 'infrastructure')) {
    const lock = await tryLock(ctx.db, 'mover-breaker', tripped.id);
    if (!lock) continue;
    try {
      await advanceBreaker(ctx, tripped.id, kinds[tripped.migration_type]);
    } finally {
      await lock.release();
    }
  }
}

async function advanceBreaker(ctx: Context, runId: string, kind: JobKind | undefined): Promise<void> {
  if (!kind) return;
  const type = kind.type;
  const log = ctx.log.child({ migration_type: type, run_id: runId });
  const run = await getRun(ctx.db, runId);
  if (!run || run.state !== 'working' || run.breaker === 'closed') return;
  const settings = await getSettings(ctx.db);
  const failing = [...(await checkStores(ctx)).failing, ...(kind.run?.checksRouting ? await brokenRoutingKeys(ctx) : [])];
  if (failing.length) {
    if (run.breaker === 'half_open' && (await breakers.openBreaker(ctx.db, runId, 'infrastructure', `stores down again: ${failing.join(', ')}`))) {
      log.warn({ failing }, 'breaker open again: a store stopped answering while half-open');
    }
    return;
  }
  if (run.breaker === 'open') {
    if (await breakers.halfOpenBreaker(ctx.db, runId, settings.breakerCoolDownMs))
      log.info({ stable_ms: settings.breakerStableMs }, 'breaker half-open: every store answers; watching them');
    return;
  }
  // Half-open and every store still answering: once for long enough, the run goes on.
  const since = run.breaker_since ? Date.now() - run.breaker_since.getTime() : 0;
  if (since < settings.breakerStableMs) return;
  const retried = (await kind.retryAfterBreaker?.(ctx, runId)) ?? [];
  await ctx.queues[type]?.resume();
  if (await breakers.closeBreaker(ctx.db, runId, settings.breakerStableMs)) {
    log.warn(
      { retried: retried.length, orgs: retried.slice(0, 20), trips: run.breaker_trips, reason: run.breaker_reason },
      'breaker closed: the run goes on; orgs failed by the fault are ready again',
    );
    // Nothing put back and nothing left: the run ends now (while open it could not).
    await finishRunIfDone(ctx.db, runId);
  }
}

/**
 * For a kind that routes orgs: dl_default or dl_override not a hash makes Chef
 * answer 500 for every request, and every org's preflight fail to read its
 * routing. Like a store that is away, it keeps the breaker open until an
 * operator mends the key; the run then goes on by itself.
 */
async function brokenRoutingKeys(ctx: Context): Promise<string[]> {
  try {
    return (await ctx.darklaunch.keysNotHashes([DEFAULT_KEY, OVERRIDE_KEY])).map(keyTypeEffect);
  } catch (err) {
    return [`darklaunch_redis (${errorMessage(err)})`];
  }
}

/**
 * A working run's queue is paused exactly while its breaker is open or
 * half-open. A pause sent while the queue Redis was away can land after the
 * breaker closed (and would stall the run), a resume can be lost: each pass
 * puts the queue right.
 */
async function alignQueues(ctx: Context, runs: RunRow[]): Promise<void> {
  for (const run of runs) {
    const queue = ctx.queues[run.migration_type];
    if (!queue || run.state !== 'working') continue;
    const paused = await queue.isPaused();
    const shouldPause = run.breaker !== 'closed';
    if (paused === shouldPause) continue;
    if (shouldPause) await queue.pause();
    else await queue.resume();
    ctx.log.warn(
      { migration_type: run.migration_type, run_id: run.id, breaker: run.breaker },
      shouldPause ? 'queue paused to match its open breaker' : 'queue was paused with its breaker closed; resumed',
    );
  }
}
