// The live-service guard (docs/architecture.md, "Concurrency and pacing"): a
// migration must not hurt the customers the live CouchDB serves. The operator
// sets a budget for CouchDB's p99 request time (PUT /settings/couchdb-budget);
// while a paced run works, one worker process at a time measures it, and
// the run's starts are slowed when it is broken and sped up again once it
// holds, AIMD-style, between the concurrency the operator set and 1. The
// figure is CouchDB's own where it has one (Couch.requestTimeP99), else this
// process's own request times (src/stores/couch-latency.ts), else, with too
// few of those, the slowest of three small requests it times (Couch.probeMs).
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { cachedSettings, getSettings } from '../db/settings.js';
import { tryLock } from '../db/advisory-lock.js';
import { couchRequestP99 } from '../stores/couch-latency.js';
import { errorMessage } from '../errors.js';
import { applyEffectiveConcurrency } from './manager.js';

/** How far back mover's own request times are read, and how long a cut waits before another: CouchDB's stats cover about as long. */
export const GUARD_WINDOW_MS = 10_000;
/** How often the guard decides for a run, fleet-wide: every worker runs the pass, but one decision per interval (else three workers would speed a run up three times as fast). */
export const GUARD_PASS_MS = 1900;
/** Fewer requests than this in the window: too few for a p99, the guard holds where it is. */
const MIN_REQUESTS = 20;
/** Small requests the guard times itself where it has too few of its own: the slowest is its figure. */
const PROBES = 3;

export interface GuardState {
  /** What the operator set. */
  set: number;
  /** What the run may have in flight now. */
  effective: number;
  /** When the guard last cut it (ms since the epoch), so one slow window cuts once. */
  lastCutAt: number;
  /** When the guard last changed it either way (ms since the epoch): a figure covers the last window, so it shows a change only a window later. */
  lastChangeAt: number;
}

export interface Figure {
  p99Ms: number | null;
  source: string | null;
  /** Why there is no figure, or what it was read from. */
  note: string;
}

/**
 * One step of the guard: over the budget, halve (at most once a window);
 * within it, add a twentieth of what the operator set (at least 1), at most
 * once a window, until back at it. No figure: hold. A budget of 0 is no
 * guard: the operator's. Either figure covers the last 10 s (CouchDB's own
 * is the histogram of its last stats interval, replaced once an interval;
 * mover's own is its last 10 s of requests), so a rise is judged by a
 * figure taken after it. Rising every 2 s pass, a run at concurrency 300
 * climbed from 60 to 210 before a figure showed the load, and Chef's live
 * p99 went to 3× the budget on CouchDB 3.5 and 9× on PouchDB Server
 * (docs/benchmarks-history.md, "On a real CouchDB 3.5").
 */
export function nextConcurrency(s: GuardState, f: Figure, budgetMs: number, now: number): { effective: number; cut: boolean; reason: string | null } {
  if (budgetMs <= 0) return { effective: s.set, cut: false, reason: null };
  const effective = Math.min(s.effective, s.set);
  if (f.p99Ms === null) return { effective, cut: false, reason: `no CouchDB figure (${f.note}); holding at ${effective}` };
  const over = f.p99Ms > budgetMs;
  if (over && now - s.lastCutAt >= GUARD_WINDOW_MS && effective > 1) {
    const to = Math.max(1, Math.floor(effective / 2));
    return {
      effective: to,
      cut: true,
      reason: `CouchDB p99 ${Math.round(f.p99Ms)} ms is over the budget of ${budgetMs} ms (${f.source}): starts slowed to ${to} of ${s.set}`,
    };
  }
  if (over)
    return {
      effective,
      cut: false,
      reason: `CouchDB p99 ${Math.round(f.p99Ms)} ms is over the budget of ${budgetMs} ms (${f.source}); at ${effective} of ${s.set}`,
    };
  if (effective >= s.set) return { effective: s.set, cut: false, reason: null };
  if (now - s.lastChangeAt < GUARD_WINDOW_MS)
    return {
      effective,
      cut: false,
      reason: `CouchDB p99 ${Math.round(f.p99Ms)} ms is within the budget of ${budgetMs} ms (${f.source}); at ${effective} of ${s.set}, speeding up once the figure covers the last change`,
    };
  const to = Math.min(s.set, effective + Math.max(1, Math.ceil(s.set / 20)));
  return {
    effective: to,
    cut: false,
    reason: `CouchDB p99 ${Math.round(f.p99Ms)} ms is within the budget of ${budgetMs} ms (${f.source}): speeding up, ${to} of ${s.set}`,
  };
}

/** CouchDB's own p99 where it gives one, else this process's requests'; with why when neither. */
export async function measure(ctx: Context): Promise<Figure> {
  let fallback: string;
  try {
    const own = await ctx.couch.requestTimeP99();
    if (own.p99Ms !== null) return { p99Ms: own.p99Ms, source: own.source, note: own.source };
    fallback = own.why;
  } catch (err) {
    fallback = `reading CouchDB's figures failed: ${errorMessage(err)}`;
  }
  const mine = couchRequestP99(GUARD_WINDOW_MS);
  if (mine.requests >= MIN_REQUESTS) return { p99Ms: mine.p99Ms, source: 'mover_requests', note: fallback };
  // Too few of its own requests for a p99 (a run held low sends few): a few small requests, timed, the slowest taken.
  const few = `${fallback}; this process sent ${mine.requests} requests in the last ${GUARD_WINDOW_MS / 1000} s`;
  try {
    let slowest = 0;
    for (let i = 0; i < PROBES; i++) slowest = Math.max(slowest, await ctx.couch.probeMs());
    return { p99Ms: slowest, source: 'probe', note: `${few}; ${PROBES} probes` };
  } catch (err) {
    return { p99Ms: null, source: null, note: `${few}; a probe failed: ${errorMessage(err)}` };
  }
}

/** The guard's clock: a seam for tests, which step it a window at a time. */
export const guardClock = { now: () => Date.now() };

const lastCut = new Map<string, number>();
const lastChange = new Map<string, number>();
const lastFallbackNote = new Map<string, string>();

/** One pass over the working paced runs (`working`, as the fleet just read them), by one process at a time. */
export async function guardRuns(ctx: Context, working: runs.RunRow[], pacedTypes: ReadonlySet<string>, everyMs = GUARD_PASS_MS): Promise<void> {
  const due = (r: runs.RunRow) => r.state === 'working' && (!r.guard_at || Date.now() - r.guard_at.getTime() >= everyMs);
  const candidates = working.filter((r) => pacedTypes.has(r.migration_type) && due(r));
  // No budget and nothing held back: nothing to decide, so no lock and no read beyond the settings every worker caches.
  if (!candidates.length || ((await cachedSettings(ctx)).couchdbBudgetP99Ms <= 0 && candidates.every((r) => r.effective_concurrency === null))) return;
  const lock = await tryLock(ctx.db, 'mover-couchdb-guard', '0');
  if (!lock) return;
  try {
    // Read again under the lock: another worker may have decided since this one read the runs.
    const mine = (await runs.activeRuns(ctx.db)).filter((r) => pacedTypes.has(r.migration_type) && due(r));
    if (!mine.length) return;
    const { couchdbBudgetP99Ms: budget } = await getSettings(ctx.db);
    const figure = budget > 0 ? await measure(ctx) : { p99Ms: null, source: null, note: 'no budget set' };
    for (const run of mine) await guardRun(ctx, run, figure, budget);
  } finally {
    await lock.release();
  }
}

async function guardRun(ctx: Context, run: runs.RunRow, figure: Figure, budget: number): Promise<void> {
  const log = ctx.log.child({ migration_type: run.migration_type, run_id: run.id });
  const was = runs.effectiveConcurrency(run);
  if (budget <= 0 && run.effective_concurrency === null) return;
  const state = { set: run.concurrency, effective: was, lastCutAt: lastCut.get(run.id) ?? 0, lastChangeAt: lastChange.get(run.id) ?? 0 };
  const now = guardClock.now();
  const next = nextConcurrency(state, figure, budget, now);
  if (next.cut) lastCut.set(run.id, now);
  if (next.effective !== was) lastChange.set(run.id, now);
  if (figure.source === 'mover_requests' && lastFallbackNote.get(run.id) !== figure.note) {
    lastFallbackNote.set(run.id, figure.note);
    log.warn({ reason: figure.note }, "the live-service guard reads mover's own CouchDB request times");
  }
  const effective = next.effective >= run.concurrency && next.reason === null ? null : next.effective;
  await runs.setRunGuard(ctx.db, run.id, { effective, p99Ms: figure.p99Ms, source: figure.source, reason: next.reason });
  if (next.effective !== was) {
    await applyEffectiveConcurrency(ctx, run.migration_type, next.effective);
    log[next.cut ? 'warn' : 'info'](
      { from: was, to: next.effective, p99_ms: figure.p99Ms, budget_ms: budget },
      next.reason ?? 'live-service guard: back at the set concurrency',
    );
  }
}
