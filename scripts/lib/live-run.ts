// One migration run of bench:live, measured while Chef's live traffic
// (chef-load.ts) goes on: the run over its own fresh orgs, through the api and
// worker processes; what the live traffic saw during it; what the fleet did
// (orgs done and failed, dark time, the guard's effective concurrency as run
// status reports it). A run still working past its time limit is halted:
// a guard holding the fleet near concurrency 1 would otherwise take an hour.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../../src/context.js';
import { getRun } from '../../src/db/runs.js';
import { readyHolding } from '../../src/db/state-tracker.js';
import { haltRun, startRun } from '../../src/runs/manager.js';
import { summarize, windowP99s, type ChefLoad, type LoadSummary } from './chef-load.js';
import { percentile } from './samplers.js';

const T = 'phase_2_migration';

/** A call to the api with the bearer token, as an operator's client makes it. */
export type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;

export function apiAt(url: string, token: string): Api {
  return async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : {} };
  };
}

/**
 * Sets the CouchDB latency budget (0: guard off). 'absent' where this build
 * has no such setting yet (404): the run then goes unguarded, and says so.
 */
export async function setBudget(api: Api, p99Ms: number): Promise<'set' | 'absent'> {
  const res = await api('PUT', '/settings/couchdb-budget', { p99_ms: p99Ms });
  if (res.status === 404) return 'absent';
  if (res.status >= 300) throw new Error(`PUT /settings/couchdb-budget answered ${res.status}: ${JSON.stringify(res.json)}`);
  return 'set';
}

/**
 * Waits at least `minS`, then until the traffic's p99 over the last 5 s is
 * within `budgetMs` again (at most `maxS`): the next run starts on a CouchDB
 * that has caught up. Returns those last 5 s.
 */
export async function settle(load: ChefLoad, budgetMs: number, minS: number, maxS: number): Promise<LoadSummary> {
  const from = Date.now();
  await sleep(minS * 1000);
  for (;;) {
    const now = Date.now();
    await load.settled(now); // its slowest answers count too
    const last = summarize(load.samples, now - 5000, now);
    if (last.p99 <= budgetMs) return last;
    if (now - from > maxS * 1000) {
      console.log(`the live traffic's p99 is still ${last.p99} ms after ${maxS} s idle: the run starts all the same`);
      return last;
    }
    await sleep(1000);
  }
}

export interface RunResult {
  label: string;
  seconds: number;
  halted: boolean;
  live: LoadSummary;
  /** The live traffic's p99 (ms) in each 5 s of the run. */
  windows: number[];
  /** The guard's effective concurrency at the end of each 5 s of the run, where run status carries it. */
  effective: (number | null)[];
  completed: number;
  failed: number;
  darkP99S: number;
}

/** Readies `names`, runs them at `concurrency` (halted past `limitS`), and measures the run. */
export async function measureRun(
  ctx: Context,
  api: Api,
  load: ChefLoad,
  label: string,
  names: string[],
  concurrency: number,
  limitS: number,
): Promise<RunResult> {
  await readyHolding(ctx.db, T, names);
  const started = Date.now();
  const { run } = await startRun(ctx, T, { count: 'all', orgs: names, concurrency });
  const guard: { t: number; effective: number | null }[] = [];
  let halted = false;
  for (;;) {
    const row = await getRun(ctx.db, run.id);
    if (row?.state === 'ready') break;
    const status = await api('GET', `/migrations/${T}/status`);
    guard.push({ t: Date.now(), effective: (status.json as { guard?: { effective_concurrency?: number } }).guard?.effective_concurrency ?? null });
    if (!halted && row?.state === 'working' && Date.now() - started > limitS * 1000) {
      // The orgs in flight finish (each its drain wait); the rest stay ready, outside this bench's measure.
      console.log(`${label}: still working after ${limitS} s (BENCH_RUN_LIMIT_S): halting it`);
      await haltRun(ctx, T, 'bench-live');
      halted = true;
    }
    await sleep(1000);
  }
  const ended = Date.now();
  // The requests due during the run that have not answered yet are its slowest: waited for, not left out.
  await load.settled(ended);
  const { rows } = await ctx.db.query(
    `SELECT s.state, p.dark_ms FROM org_migration_state s JOIN mover.org_progress p USING (migration_type, org_id)
     WHERE s.migration_type = $1 AND s.org_name = ANY($2)`,
    [T, names],
  );
  const dark = rows.filter((r) => r.dark_ms !== null).map((r) => Number(r.dark_ms) / 1000);
  const effective: (number | null)[] = [];
  for (let t = started + 5000; t < ended + 5000; t += 5000) effective.push(guard.filter((g) => g.t <= t).at(-1)?.effective ?? null);
  return {
    label,
    seconds: (ended - started) / 1000,
    halted,
    live: summarize(load.samples, started, ended),
    windows: windowP99s(load.samples, started, ended),
    effective,
    completed: rows.filter((r) => r.state === 'completed').length,
    failed: rows.filter((r) => r.state === 'failed').length,
    darkP99S: percentile(dark, 99),
  };
}
