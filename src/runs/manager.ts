// Starting, watching, halting and re-sizing migration runs (legacy
// mover_manager). Runs live in Postgres; the queue carries one job per org.
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { getSettings, setSetting } from '../db/settings.js';
import { readyOrgs } from '../db/state-tracker.js';
import { unrevertedInRun } from '../db/reverts.js';
import { ConflictError, errorMessage } from '../errors.js';
import { applyPacing, isMigrationType, orgJobId, type MigrationType, type OrgJobData } from '../queues.js';
import { haltFleet } from './halt.js';
import { routingPreflight, type ExpectedDefault } from './routing-preflight.js';
import { JOB_OPTIONS } from './manager-options.js';
import * as prep from '../jobs/phase_2_migration_prep.js';
import * as revert from '../jobs/phase_2_revert.js';

const ENQUEUE_CHUNK = 1000;


/**
 * Takes the orgs that are ready now (ordered by org_id, up to count) and
 * queues one job each. A migration or revert starts only once the routing
 * Chef applies has been checked (`expect`: what dl_default must say now).
 */
export async function startRun(ctx: Context, type: MigrationType, count: number | 'all', concurrency: number, expect: ExpectedDefault = 'any'): Promise<runs.RunRow> {
  if (type === prep.type) return prep.startPrep(ctx, concurrency);
  if (type === revert.type) return (await revert.startRevert(ctx, 'all', concurrency)).run;
  await routingPreflight(ctx, expect);
  const orgs = await readyOrgs(ctx.db, type, count === 'all' ? null : count);
  const run = await runs.createRun(ctx.db, type, count === 'all' ? null : count, orgs.length, concurrency);
  if (!run) throw new ConflictError(`a ${type} run is already active`, 'run_active');
  const queue = ctx.queues[type];
  await queue.setGlobalConcurrency(concurrency);
  await applyPacing(queue, concurrency, (await getSettings(ctx.db)).sleepTimeMs);
  for (let i = 0; i < orgs.length; i += ENQUEUE_CHUNK) {
    await queue.addBulk(
      orgs.slice(i, i + ENQUEUE_CHUNK).map((o) => ({
        name: type,
        data: { runId: run.id, orgName: o.org_name, orgId: o.org_id } satisfies OrgJobData,
        opts: { ...JOB_OPTIONS, jobId: orgJobId(run.id, o.org_id) },
      })),
    );
  }
  ctx.log.info({ migration_type: type, run_id: run.id, orgs: orgs.length, concurrency }, 'run started');
  await runs.finishRunIfDone(ctx.db, run.id);
  return run;
}

export interface RunStatus {
  runId: string | null;
  state: 'ready' | 'working' | 'halting';
  orgs_completed: number;
  objects_remaining: number | 'all';
  objects_requested: number | 'all';
  objects_in_progress: number;
  objects_failed: number;
  fatal_stop: boolean;
  /** Orgs of the run with 503_mode up now (never more than the concurrency); null if the darklaunch Redis did not answer. */
  orgs_dark: number | null;
  concurrency?: number;
  stop_reason?: string | null;
  started_at?: string;
  finished_at?: string | null;
  /** A revert run: its options, and the orgs it refused or failed, with why. */
  params?: Record<string, unknown>;
  not_reverted?: Awaited<ReturnType<typeof unrevertedInRun>>;
}

export async function runStatus(ctx: Context, type: string): Promise<RunStatus> {
  const run = await runs.latestRun(ctx.db, type);
  if (!run) {
    return { runId: null, state: 'ready', orgs_completed: 0, objects_remaining: 0, objects_requested: 0, objects_in_progress: 0, objects_failed: 0, fatal_stop: false, orgs_dark: 0 };
  }
  const inFlight = await runs.inFlightOrgs(ctx.db, run.id);
  const inProgress = inFlight.length;
  // Only an org in flight can be dark: its own 503_mode is asked for each.
  const dark = await ctx.darklaunch.orgsDown(inFlight).catch((err) => {
    ctx.log.warn({ err: errorMessage(err), run_id: run.id }, 'could not read which orgs are dark');
    return null;
  });
  const notStarted = run.state === 'ready' ? 0 : Math.max(0, run.enqueued - run.orgs_finished - run.orgs_skipped - inProgress);
  return {
    runId: run.id,
    state: run.state,
    orgs_completed: run.orgs_finished,
    objects_remaining: notStarted,
    objects_requested: run.requested ?? 'all',
    objects_in_progress: inProgress,
    objects_failed: run.orgs_failed,
    fatal_stop: run.fatal_stop,
    orgs_dark: dark === null ? null : dark.length,
    concurrency: run.concurrency,
    stop_reason: run.stop_reason,
    started_at: run.started_at.toISOString(),
    finished_at: run.finished_at ? run.finished_at.toISOString() : null,
    ...(type === revert.type ? { params: run.params, not_reverted: await unrevertedInRun(ctx.db, run.id) } : {}),
  };
}

async function activeRun(ctx: Context, type: string): Promise<runs.RunRow> {
  const run = await runs.latestRun(ctx.db, type);
  if (!run || run.state !== 'working') throw new ConflictError(`no ${type} run is working`, 'not_running');
  return run;
}

export async function haltRun(ctx: Context, type: string, by: string): Promise<runs.RunRow> {
  const run = await activeRun(ctx, type);
  await haltFleet(ctx, type, run.id, `halted by ${by}`, false);
  return (await runs.getRun(ctx.db, run.id))!;
}

/** Fleet-wide: BullMQ's global concurrency caps active jobs across every worker process. */
export async function setConcurrency(ctx: Context, type: string, concurrency: number): Promise<void> {
  if (!isMigrationType(type)) return;
  const run = await runs.latestRun(ctx.db, type);
  const queue = ctx.queues[type];
  await queue.setGlobalConcurrency(concurrency);
  await applyPacing(queue, concurrency, (await getSettings(ctx.db)).sleepTimeMs);
  if (run && run.state !== 'ready') await runs.setRunConcurrency(ctx.db, run.id, concurrency);
  ctx.log.info({ migration_type: type, concurrency }, 'concurrency set');
}

/** The pacing of the per-org migration: every migration queue's rate limit follows at once. */
export async function setSleepTime(ctx: Context, ms: number): Promise<void> {
  await setSetting(ctx.db, 'sleepTimeMs', ms);
  // Only the per-org migration is paced; the prep pass and revert run unpaced by design.
  const queue = ctx.queues.phase_2_migration;
  await applyPacing(queue, (await queue.getGlobalConcurrency()) ?? 1, ms);
  ctx.log.info({ sleep_time_ms: ms }, 'sleep time set');
}
