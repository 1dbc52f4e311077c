// Starting, watching, halting and re-sizing runs of any job kind (legacy
// mover_manager). Runs live in Postgres; the queue carries the kind's jobs.
// Nothing here knows one kind from another: each kind's RunSpec says how its
// orgs are selected, batched and paced (src/frame/kind.ts).
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { cachedSettings, getSettings, setSetting } from '../db/settings.js';
import { errorMessage, NoOrgsError, NotFoundError, StateConflictError } from '../errors.js';
import { MIGRATION_TYPES, runKind, type RunKind } from '../jobs/index.js';
import { batchJobId, JOB_OPTIONS, orgJob, type BatchJobData, type OrgTarget, type RunRequest } from '../frame/kind.js';
import { applyPacing } from '../queues.js';
import { inTransaction } from '../stores/postgres.js';
import { haltFleet } from '../frame/halt.js';
import { routingPreflight } from './routing-preflight.js';
import { checkOpenDbs } from './couchdb-open-dbs.js';
import { darkTimeOf, type DarkTime } from './dark-time.js';
import { darkNow } from './dark-now.js';
import { runState, stopReason, type RunState } from './run-state.js';

const ENQUEUE_CHUNK = 1000;

function noOrgsMessage(type: string, req: RunRequest): string {
  if (req.orgs) return `none of the ${req.orgs.length} named orgs is one a ${type} run can take now (see each org's state: GET /orgs/:name)`;
  return `no org is waiting for a ${type} run (a migration takes ready orgs: capture them and make them ready first); no run was started`;
}

export function kindOf(type: string): RunKind {
  const kind = runKind(type);
  if (!kind) throw new NotFoundError(`unknown migration type "${type}"; known: ${MIGRATION_TYPES.join(', ')}`, 'unknown_type');
  return kind;
}

/**
 * Takes the kind's orgs as they are now (in its order, up to count) and
 * queues its jobs. A kind that changes routing starts only once the routing
 * Chef applies has been checked (`expectRouting`: what dl_default must say).
 */
export async function startRun(ctx: Context, type: string, req: RunRequest): Promise<{ run: runs.RunRow; skipped: string[] }> {
  const kind = kindOf(type);
  const active = await runs.latestRun(ctx.db, type);
  if (active && active.state !== 'ready') throw new StateConflictError(`a ${type} run (${active.id}) is already active`, 'run_active');
  // The routing first: a dl_override that would route every org wrongly is worth saying even with nothing to run.
  if (kind.run.checksRouting) await routingPreflight(ctx, req.expectRouting ?? 'any');
  // A run of no orgs would only hide the run before it (the one whose failures and charts the operator is reading).
  const { targets } = await kind.run.selectTargets(ctx, req, { after: null, size: 1 });
  if (!targets.length) throw new NoOrgsError(noOrgsMessage(type, req));
  const requested = req.count !== 'all' ? req.count : req.orgs ? req.orgs.length : null;
  // The request's own id, kept with the run: an INSERT sent again after its answer was lost finds the run it made.
  const requestId = randomUUID();
  // Said in run status for as long as the run works: a limit CouchDB breaks for it hurts the live traffic too.
  const openDbs = kind.run.paced ? await checkOpenDbs(ctx, type, req.concurrency) : null;
  const params = { ...req.params, requestId, ...(openDbs ? { couchdb_open_dbs: openDbs } : {}) };
  const run = (await runs.createRun(ctx.db, type, requested, 0, req.concurrency, params)) ?? (await ownRun(ctx, type, requestId));
  if (!run) throw new StateConflictError(`a ${type} run is already active`, 'run_active');
  const queue = ctx.queues[type];
  let queued: { taken: Set<string>; enqueued: number };
  try {
    const starting = await gentleStart(ctx, kind, run.id, req.concurrency);
    await queue.setGlobalConcurrency(starting);
    // A queue an earlier run's breaker paused (that run then halted by hand) must take jobs again.
    await queue.resume();
    await pace(ctx, kind, queue, starting);
    queued = await enqueuePages(ctx, kind, run.id, req);
  } catch (err) {
    // Not all of its orgs were queued: the run must not pass for done. It halts (the orgs it queued
    // finish or skip), says why, and the rest stay as they are for the next start.
    ctx.log.error({ migration_type: type, run_id: run.id, err: errorMessage(err) }, 'could not queue all of the run; halting it');
    try {
      await runs.haltRun(ctx.db, run.id, `not all of its orgs could be queued: ${errorMessage(err)}`, true);
      await runs.doneEnqueueing(ctx.db, run.id);
    } catch (haltErr) {
      // Left marked as queueing, it cannot end as if complete: the reconciler halts it once this starter has been silent long enough.
      ctx.log.error({ migration_type: type, run_id: run.id, err: errorMessage(haltErr) }, 'could not halt the part-queued run; the reconciler will');
    }
    throw err;
  }
  await runs.doneEnqueueing(ctx.db, run.id);
  const skipped = (req.orgs ?? []).filter((o) => !queued.taken.has(o));
  const { enqueued } = queued;
  ctx.log.info({ migration_type: type, run_id: run.id, orgs: enqueued, concurrency: req.concurrency }, 'run started');
  await runs.finishRunIfDone(ctx.db, run.id);
  return { run: { ...run, enqueued, enqueueing: false }, skipped };
}

/** How often a starter slowed inside a page says it is alive (the reconciler gives up on it after 5 minutes of silence). */
const BEAT_EVERY_MS = 30_000;

/** Orgs a run reads, counts and queues at a time: a million-org run never sits in the starter's memory. A seam for tests. */
export const runPaging = { orgsPerPage: 10 * ENQUEUE_CHUNK };

/**
 * The kind's targets, page by page: each page is counted in the run before
 * its jobs are queued, so the run's count never trails what its workers
 * finish. Returns how many it queued, and the names it took when the
 * request named orgs.
 */
async function enqueuePages(ctx: Context, kind: RunKind, runId: string, req: RunRequest): Promise<{ taken: Set<string>; enqueued: number }> {
  const queue = ctx.queues[kind.type];
  const size = kind.run.batchSize;
  // A batch kind's page holds whole batches.
  const pageSize = size === 1 ? runPaging.orgsPerPage : Math.max(1, Math.floor(runPaging.orgsPerPage / size)) * size;
  const taken = new Set<string>();
  let left = req.count === 'all' ? Infinity : req.count;
  let after: string | null = null;
  let batch = 0;
  let enqueued = 0;
  let beat = Date.now();
  while (left > 0) {
    const want = Math.min(pageSize, left);
    const page = await kind.run.selectTargets(ctx, req, { after, size: want });
    if (!page.targets.length) break;
    // Counted and marked together, and only while the run still works and is this starter's to queue
    // (a halt, or a reconciler that took this starter for dead, stops it here).
    const counted = await inTransaction(ctx.db, async (c) => {
      if (!(await runs.addEnqueued(c, runId, page.targets.length))) return false;
      await kind.run.markInRun?.(c, runId, page.targets);
      return true;
    });
    if (!counted) {
      ctx.log.warn(
        { migration_type: kind.type, run_id: runId },
        'run halted (or its queueing was taken over) while it was being queued; the rest is not queued',
      );
      break;
    }
    if (req.orgs) for (const t of page.targets) taken.add(t.name);
    const jobs = jobsFor(kind, runId, page.targets, batch);
    batch += jobs.length;
    // Per call: 1,000 one-org jobs, or 100 batches (a prep batch carries 2,000 orgs).
    const chunk = size === 1 ? ENQUEUE_CHUNK : ENQUEUE_CHUNK / 10;
    for (let i = 0; i < jobs.length; i += chunk) {
      await queue.addBulk(jobs.slice(i, i + chunk));
      // Alive, for the reconciler, however long a store outage made this page (the page's count beat last).
      if (Date.now() - beat > BEAT_EVERY_MS) {
        await runs.beatEnqueueing(ctx.db, runId);
        beat = Date.now();
      }
    }
    enqueued += page.targets.length;
    left -= page.targets.length;
    after = page.last;
    if (page.targets.length < want) break;
  }
  return { taken, enqueued };
}

async function ownRun(ctx: Context, type: string, requestId: string): Promise<runs.RunRow | null> {
  const latest = await runs.latestRun(ctx.db, type);
  return latest?.params.requestId === requestId ? latest : null;
}

/** One job per org, named after it (what Bull Board lists), or one per batch of the kind's size. */
function jobsFor(kind: RunKind, runId: string, targets: OrgTarget[], firstBatch = 0) {
  const size = kind.run.batchSize;
  if (size === 1) {
    return targets.map((o) => orgJob(runId, o.name, o.guid));
  }
  const jobs = [];
  for (let b = 0; b * size < targets.length; b++) {
    const n = firstBatch + b;
    const data: BatchJobData = { runId, batch: n, orgs: targets.slice(b * size, (b + 1) * size) };
    jobs.push({ name: `batch ${n}`, data, opts: { ...JOB_OPTIONS, jobId: batchJobId(runId, n) } });
  }
  return jobs;
}

export interface RunStatus {
  run_id: string | null;
  /** In the operator's words (src/runs/run-state.ts); the runs table's own is working, halting or ready. */
  state: RunState;
  /** Why it stopped, or how it ended; null while it works and when no run exists. */
  stop_reason: string | null;
  orgs_completed: number;
  objects_remaining: number | 'all';
  objects_requested: number | 'all';
  objects_in_progress: number;
  objects_failed: number;
  fatal_stop: boolean;
  /** Orgs of the run with 503_mode up now (never more than the concurrency); null if the darklaunch Redis did not answer. */
  orgs_dark: number | null;
  /** How long its finished orgs were dark (src/runs/dark-time.ts), and whether the fleet keeps them dark well past the drain wait. */
  dark?: DarkTime;
  /** The run's circuit breaker (src/frame/breaker.ts): closed, or open / half-open with why and since when. */
  breaker?: { state: string; kind: string | null; reason: string | null; since: string | null; trips: number };
  concurrency?: number;
  /** The live-service guard's hold on its starts (src/runs/couchdb-guard.ts). */
  guard?: {
    budget_p99_ms: number | null;
    measured_p99_ms: number | null;
    source: string | null;
    set_concurrency: number;
    effective_concurrency: number;
    reason: string | null;
    at: string | null;
    /** Set when the run's orgs pass CouchDB's open-database limit (src/runs/couchdb-open-dbs.ts). */
    couchdb_open_dbs: string | null;
  };
  started_at?: string;
  finished_at?: string | null;
  [kindField: string]: unknown;
}

/** The run `runId` of the kind (404 when it is another kind's, or unknown), else its latest one. */
export async function runOf(ctx: Context, type: string, runId?: string): Promise<runs.RunRow | null> {
  kindOf(type);
  if (runId === undefined) return runs.latestRun(ctx.db, type);
  const run = await runs.getRun(ctx.db, runId);
  if (!run || run.migration_type !== type) throw new NotFoundError(`no ${type} run ${runId}; GET /migrations/${type}/runs lists them`, 'unknown_run');
  return run;
}

/** The status of a run of the kind: `runId`'s, else the latest's (legacy mover_manager status). */
export async function runStatus(ctx: Context, type: string, runId?: string): Promise<RunStatus> {
  const kind = kindOf(type);
  const run = await runOf(ctx, type, runId);
  if (!run) {
    return {
      run_id: null,
      state: 'not_started',
      stop_reason: null,
      orgs_completed: 0,
      objects_remaining: 0,
      objects_requested: 0,
      objects_in_progress: 0,
      objects_failed: 0,
      fatal_stop: false,
      orgs_dark: 0,
    };
  }
  const { inFlight, dark } = await darkNow(ctx, run.id);
  const settings = await cachedSettings(ctx);
  const notStarted = run.state === 'ready' ? 0 : Math.max(0, run.enqueued - run.orgs_finished - run.orgs_skipped - inFlight.length);
  return {
    run_id: run.id,
    state: runState(run),
    stop_reason: stopReason(run),
    orgs_completed: run.orgs_finished,
    objects_remaining: notStarted,
    objects_requested: run.requested ?? 'all',
    objects_in_progress: inFlight.length,
    objects_failed: run.orgs_failed,
    fatal_stop: run.fatal_stop,
    orgs_dark: dark === null ? null : dark.length,
    dark: darkTimeOf(run.dark_hist, run.dark_max_ms, settings.drainWaitMs),
    breaker: {
      state: run.breaker,
      kind: run.breaker_kind,
      reason: run.breaker_reason,
      since: run.breaker_since?.toISOString() ?? null,
      trips: run.breaker_trips,
    },
    concurrency: run.concurrency,
    guard: {
      budget_p99_ms: settings.couchdbBudgetP99Ms > 0 ? settings.couchdbBudgetP99Ms : null,
      measured_p99_ms: run.guard_p99_ms,
      source: run.guard_source,
      set_concurrency: run.concurrency,
      effective_concurrency: runs.effectiveConcurrency(run),
      reason: run.guard_reason,
      at: run.guard_at?.toISOString() ?? null,
      couchdb_open_dbs: typeof run.params.couchdb_open_dbs === 'string' ? run.params.couchdb_open_dbs : null,
    },
    started_at: run.started_at.toISOString(),
    finished_at: run.finished_at ? run.finished_at.toISOString() : null,
    ...(kind.run.report ? await kind.run.report(ctx, run) : {}),
  };
}

export async function haltRun(ctx: Context, type: string, by: string): Promise<runs.RunRow> {
  kindOf(type);
  const run = await runs.latestRun(ctx.db, type);
  if (!run || run.state !== 'working') throw new StateConflictError(`no ${type} run is working`, 'not_running');
  await haltFleet(ctx, type, run.id, `halted by ${by}`, false);
  return (await runs.getRun(ctx.db, run.id))!;
}

/** Fleet-wide: BullMQ's global concurrency caps active jobs across every worker process. */
export async function setConcurrency(ctx: Context, type: string, concurrency: number): Promise<void> {
  const kind = kindOf(type);
  const queue = ctx.queues[type];
  await queue.setGlobalConcurrency(concurrency);
  await pace(ctx, kind, queue, concurrency);
  const run = await runs.latestRun(ctx.db, type);
  if (run && run.state !== 'ready') {
    await runs.setRunConcurrency(ctx.db, run.id, concurrency);
    if (kind.run.paced) await runs.setOpenDbsWarning(ctx.db, run.id, await checkOpenDbs(ctx, type, concurrency));
  }
  ctx.log.info({ migration_type: type, concurrency }, 'concurrency set');
}

/**
 * Under a CouchDB budget a paced run starts at a tenth of its concurrency and
 * the live-service guard lets it grow while CouchDB keeps within the budget
 * (src/runs/couchdb-guard.ts): a run that opened at full concurrency would
 * break the budget before the guard's first figure. Without one, it starts at
 * its concurrency.
 */
async function gentleStart(ctx: Context, kind: RunKind, runId: string, concurrency: number): Promise<number> {
  const { couchdbBudgetP99Ms: budget } = await getSettings(ctx.db);
  if (budget <= 0 || !kind.run.paced) return concurrency;
  const starting = Math.max(1, Math.ceil(concurrency / 10));
  if (starting >= concurrency) return concurrency;
  const reason = `starting at ${starting} of ${concurrency} under the CouchDB budget of ${budget} ms; speeding up while CouchDB keeps within it`;
  await runs.setRunGuard(ctx.db, runId, { effective: starting, p99Ms: null, source: null, reason });
  return starting;
}

/**
 * The live-service guard's hold on a kind's starts (src/runs/couchdb-guard.ts):
 * its queue's global concurrency and pacing follow `effective`; the run keeps
 * the concurrency the operator set, and the claim's gate takes the lower.
 */
export async function applyEffectiveConcurrency(ctx: Context, type: string, effective: number): Promise<void> {
  const kind = kindOf(type);
  const queue = ctx.queues[type];
  await queue.setGlobalConcurrency(effective);
  await pace(ctx, kind, queue, effective);
}

/** A kind's queue paced as the settings say now (src/queues.ts, applyPacing); an unpaced kind has no limit. */
async function pace(ctx: Context, kind: RunKind, queue: Queue, concurrency: number): Promise<void> {
  const { sleepTimeMs, drainWaitMs } = await getSettings(ctx.db);
  await applyPacing(queue, concurrency, kind.run.paced ? sleepTimeMs : 0, kind.run.paced ? drainWaitMs : 0);
}

/** Every paced kind's rate limit follows the settings at once. */
async function repace(ctx: Context): Promise<void> {
  for (const type of MIGRATION_TYPES) {
    const kind = kindOf(type);
    if (!kind.run.paced) continue;
    const queue = ctx.queues[type];
    await pace(ctx, kind, queue, (await queue.getGlobalConcurrency()) ?? 1);
  }
}

/** The pacing of the paced kinds (the per-org migrations, legacy sleep_time). */
export async function setSleepTime(ctx: Context, ms: number): Promise<void> {
  await setSetting(ctx.db, 'sleepTimeMs', ms);
  await repace(ctx);
  ctx.log.info({ sleep_time_ms: ms }, 'sleep time set');
}

/** The drain wait after an org goes dark; starts are spread over it (src/queues.ts, applyPacing). */
export async function setDrainWait(ctx: Context, ms: number): Promise<void> {
  await setSetting(ctx.db, 'drainWaitMs', ms);
  await repace(ctx);
  ctx.log.info({ drain_wait_ms: ms }, 'drain wait set');
}
