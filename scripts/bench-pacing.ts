// npm run bench:pacing — production pacing at scale (BENCHMARKS.md): the
// safe drain wait (5 s, the default) keeps every org dark at least that long,
// so a run's speed is the orgs in flight at once over ~5 s. BENCH_ORGS (1200)
// clean orgs through 3 worker processes and an api, as the Procfile starts
// them with default settings, over a private redis-server and PostgreSQL and
// a CouchDB (PouchDB Server in memory, or the real CouchDB BENCH_COUCHDB_URL
// names); one run at concurrency BENCH_CONCURRENCY (150). Prints
// the run's time against the ideal (orgs × drain wait / concurrency), each
// org's dark time (org_progress.dark_ms: from the write that set 503_mode to
// the one that cleared it) p50/p99/max, each org's start→end (its state row)
// p99, the org starts per second, what run status says of saturation, the
// peak Postgres connections, every process's peak RSS, and the Redis
// commands an org cost (the private server's own counts).
//   BENCH_WARMUP_ORGS (0): that many more orgs migrated first, unmeasured, at
//     drain wait 0 and the same concurrency, so the workers run the measured
//     run warm (V8 optimizes a function once it has run enough; a process's
//     first few hundred orgs cost it twice the CPU), as a long run is.
//   BENCH_PG_STATEMENTS=1: Postgres's statements per org too (pg_stat_statements, loaded for it).
//   BENCH_NODE_FLAGS: V8 flags for the workers (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`: they exit as an operator stops them).
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { getSettings, setSetting } from '../src/db/settings.js';
import { readyHolding } from '../src/db/state-tracker.js';
import { seedDarklaunchDefaults, seedEstate } from '../dev/estate.js';
import { startPrivatePostgres, startPrivateRedis } from '../dev/private-stores.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { captureOrgs } from '../src/migration/capture.js';
import { runStatus, startRun } from '../src/runs/manager.js';
import { orgJobId } from '../src/frame/kind.js';
import { couchChoice, describeCouch, startCouch } from './lib/couch.js';
import { benchConfig, spawnMover, stopChild, waitForRunEnd } from './lib/fleet.js';
import { freePort } from '../dev/pouch-server.js';
import { waitForWorkers } from './lib/round-trips.js';
import { cpuSeconds, percentile, POSTMASTER, sampleConnections, sampleRss, serverCpuSeconds } from './lib/samplers.js';

const N = Number(process.env.BENCH_ORGS ?? 1200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 150);
const WORKERS = 3;
const T = 'phase_2_migration';

const choice = await couchChoice();
const PG_STATEMENTS = process.env.BENCH_PG_STATEMENTS === '1';
const [redis, pg, couch] = await Promise.all([
  startPrivateRedis(),
  startPrivatePostgres(PG_STATEMENTS ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' } : {}),
  startCouch(choice),
]);
console.log(describeCouch(couch));
// workerConcurrency is this script's own context's; the processes keep their default.
const config = {
  ...(await benchConfig({ databaseUrl: pg.url, redisUrl: redis.url, couchdbUrl: couch.url }, 'bench-pacing')),
  ...(couch.accountDb !== 'opscode_account' ? { couchdbAccountDb: couch.accountDb } : {}),
};
const ctx = createContext(config, createLogger('silent', 'bench-pacing'), { dbPoolSize: 4 });
await migrate(ctx.db);
await seedDarklaunchDefaults(ctx.darklaunchRedis);

const WARMUP = Number(process.env.BENCH_WARMUP_ORGS ?? 0);
const t0 = Date.now();
const orgs = await seedEstate(
  couch.url,
  [
    ...Array.from({ length: N }, (_, i) => ({ name: `pace-${String(i).padStart(5, '0')}` })),
    ...Array.from({ length: WARMUP }, (_, i) => ({ name: `warm-${String(i).padStart(5, '0')}` })),
  ],
  { parallel: 8, accountDb: couch.accountDb },
);
await accountRefresh.refreshAccounts(ctx);
const names = orgs.filter((o) => o.name.startsWith('pace-')).map((o) => o.name);
const warmNames = orgs.filter((o) => o.name.startsWith('warm-')).map((o) => o.name);
await captureOrgs(ctx.db, T, [...names, ...warmNames]);
console.log(`estate of ${N} orgs seeded and captured in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const children: Record<string, ChildProcess> = {};
// Default settings: only the stores, the token and the logging are set.
const metricsPorts: number[] = [];
for (let i = 1; i <= WORKERS; i++) {
  metricsPorts.push(await freePort());
  children[`worker-${i}`] = spawnMover(config, 'workers/worker', { METRICS_PORT: String(metricsPorts.at(-1)) });
}
children.api = spawnMover(config, 'api/server', { PORT: String(config.port) });
await sleep(3000); // the processes start (tsx compiles them) before the clock starts
await waitForWorkers(metricsPorts);
if (WARMUP) {
  const { drainWaitMs: drain } = await getSettings(ctx.db);
  await setSetting(ctx.db, 'drainWaitMs', 0);
  await readyHolding(ctx.db, T, warmNames);
  const warm = await startRun(ctx, T, { count: 'all', concurrency: CONCURRENCY });
  const ended = await waitForRunEnd(ctx.db, warm.run.id, 20 * 60_000);
  await setSetting(ctx.db, 'drainWaitMs', drain);
  console.log(`warm-up: ${WARMUP} orgs at drain wait 0, ${ended.orgs_finished} finished`);
  await sleep(2000); // the workers' cached settings (1 s) see the drain wait again
}
await readyHolding(ctx.db, T, names);

const { drainWaitMs, sleepTimeMs } = await getSettings(ctx.db);
const [couchPid] = couch.pids(); // the server's own process (none for a CouchDB on another machine)
const rss = sampleRss(() => ({
  ...Object.fromEntries(Object.entries(children).map(([n, c]) => [n, c.pid ?? 0])),
  bench: process.pid,
  ...(couchPid ? { couchdb: couchPid } : {}),
}));
const conns = sampleConnections(ctx.db);
/** CPU seconds each part has used so far: where a run at the edge of the machine's cores spends them. */
const cpuNow = (): Record<string, number> => ({
  workers: Object.entries(children).reduce((n, [name, c]) => n + (name.startsWith('worker') ? cpuSeconds(c.pid ?? 0) : 0), 0),
  api: cpuSeconds(children.api.pid ?? 0),
  couchdb: couchPid ? cpuSeconds(couchPid, { reaped: true }) : 0,
  postgres: serverCpuSeconds(`${POSTMASTER} .* -p ${pg.port} `),
  redis: serverCpuSeconds(`redis-server .*:${redis.port}`),
  bench: cpuSeconds(process.pid),
});
const cpu0 = cpuNow();
const steps0 = await stepSums(metricsPorts);
/** Postgres sessions opened so far (every backend started: a pool that lets idle connections go opens them again). */
const sessionsNow = async (): Promise<number> => Number((await ctx.db.query(`SELECT sum(sessions)::int AS n FROM pg_stat_database`)).rows[0].n);
const sessions0 = await sessionsNow();
if (PG_STATEMENTS) await ctx.db.query(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()`);
await ctx.queueRedis.config('RESETSTAT');
const started = Date.now();
const { run } = await startRun(ctx, T, { count: 'all', concurrency: CONCURRENCY });
await waitForRunEnd(ctx.db, run.id, 20 * 60_000);
const seconds = (Date.now() - started) / 1000;
const peaks = rss.stop();
const sessions = (await sessionsNow()) - sessions0;
const cpu = Object.fromEntries(Object.entries(cpuNow()).map(([k, v]) => [k, v - cpu0[k]]));
const peakConnections = await conns.stop();
const redisCalls = await redisCommandCounts();
const pgCalls = PG_STATEMENTS ? await pgStatementCounts() : [];

const { rows } = await ctx.db.query(
  `SELECT s.org_id, s.state, extract(epoch FROM s.migration_end - s.migration_start)::float8 AS span_s, p.dark_ms,
          extract(epoch FROM s.migration_start AT TIME ZONE 'utc')::float8 AS start_s, extract(epoch FROM s.migration_end AT TIME ZONE 'utc')::float8 AS end_s
   FROM org_migration_state s JOIN mover.org_progress p USING (migration_type, org_id) WHERE s.migration_type = $1 AND s.org_name = ANY($2)`,
  [T, names],
);
if (process.env.PACING_DUMP) (await import('node:fs')).writeFileSync(process.env.PACING_DUMP, JSON.stringify(rows));
const completed = rows.filter((r) => r.state === 'completed').length;
// Dark: from the write that set 503_mode to the one that cleared it (org_progress.dark_ms); start→end: the state row's claim to completion.
const dark = rows.filter((r) => r.dark_ms !== null).map((r) => Number(r.dark_ms) / 1000);
const span = rows.filter((r) => r.span_s !== null).map((r) => Number(r.span_s));
const ideal = (N * drainWaitMs) / 1000 / CONCURRENCY;
const stillDark = (await Promise.all(names.map((n) => ctx.darklaunchRedis.hget(`dl_org_${n}`, '503_mode')))).filter((v) => v === 'true').length;
// Org starts (claims) per second of the run, from migration_start.
const first = Math.min(...rows.map((r) => Number(r.start_s)));
const perSecond: number[] = [];
for (const r of rows) perSecond[Math.floor(Number(r.start_s) - first)] = (perSecond[Math.floor(Number(r.start_s) - first)] ?? 0) + 1;
const starts = Array.from(perSecond, (n) => n ?? 0);
// Orgs in flight (claimed, not yet finished) at the middle of each second: how full the slots were.
const inFlight = starts.map((_, i) => rows.filter((r) => Number(r.start_s) - first <= i + 0.5 && Number(r.end_s) - first > i + 0.5).length);
const status = await runStatus(ctx, T);
const steps = stepTimes(steps0, await stepSums(metricsPorts));
const slotEdges = await slotOutsideOrg(run.id, rows);

console.log(
  `\n${N} orgs, ${WORKERS} worker processes (default WORKER_CONCURRENCY), run concurrency ${CONCURRENCY}, drain wait ${drainWaitMs} ms, sleep time ${sleepTimeMs} ms, ${couch.version}`,
);
console.log(
  `| orgs completed | run time | ideal (orgs × drain / concurrency) | run / ideal | dark p50 | dark p99 | dark max | start→end p99 | orgs still dark | peak Postgres connections |`,
);
console.log(`|---|---|---|---|---|---|---|---|---|---|`);
console.log(
  `| ${completed} / ${N} | ${seconds.toFixed(1)} s | ${ideal.toFixed(1)} s | **${(seconds / ideal).toFixed(2)}** | ${percentile(dark, 50).toFixed(2)} s | **${percentile(dark, 99).toFixed(2)} s** | ${Math.max(...dark).toFixed(2)} s | **${percentile(span, 99).toFixed(2)} s** | ${stillDark} | ${peakConnections} |`,
);
console.log(`org starts per second: ${starts.join(' ')}`);
console.log(`orgs in flight, each second: ${inFlight.join(' ')}`);
console.log(`start→end p50 ${percentile(span, 50).toFixed(2)} s (the copy, the drain wait and the catch-up, in the org's slot)`);
console.log(`step times (mean; share past 0.5 s): ${steps}`);
console.log(`a slot's time outside its org (BullMQ active, the org not in flight): ${slotEdges}`);
console.log(
  `run status: dark p50 ${status.dark?.p50_ms} ms, p99 ${status.dark?.p99_ms} ms, max ${status.dark?.max_ms} ms, ${status.dark?.saturated ? `SATURATED (p99 ${status.dark?.past_drain_p99_ms} ms past the drain wait)` : 'not saturated'}`,
);
if (status.guard?.couchdb_open_dbs) console.log(`run status, CouchDB's open databases: ${status.guard.couchdb_open_dbs}`);
console.log(`Postgres sessions opened during the run: ${sessions}`);
const perOrg = (n: number) => (n / N).toFixed(2);
console.log(`Redis commands per org (queue and darklaunch, one server): ${redisCalls.map(([c, n]) => `${c} ${perOrg(n)}`).join(', ')}`);
if (PG_STATEMENTS) {
  console.log(`Postgres statements per org, all: ${perOrg(pgCalls.reduce((a, r) => a + r.calls, 0))}; the most called:`);
  // Execution time as Postgres counts it: a function's or trigger's statements are inside their caller's time too.
  console.log(`  calls  exec ms (per org)`);
  for (const r of pgCalls.slice(0, 14)) console.log(`  ${perOrg(r.calls).padStart(5)}  ${(r.ms / N).toFixed(3).padStart(7)}  ${r.query}`);
}
console.log(
  `CPU over the run (ms per org): ${Object.entries(cpu)
    .map(([n, v]) => `${n} ${((v * 1000) / N).toFixed(1)}`)
    .join(', ')}; all ${((Object.values(cpu).reduce((a, b) => a + b, 0) / seconds) * 100).toFixed(0)}% of one core on average`,
);
console.log(
  `peak RSS (MiB): ${Object.entries(peaks)
    .map(([n, v]) => `${n} ${v.toFixed(0)}`)
    .join(', ')}`,
);
console.log(
  JSON.stringify({
    bench: 'pacing',
    couchdb: couch.version,
    orgs: N,
    concurrency: CONCURRENCY,
    completed,
    run_s: seconds,
    ideal_s: ideal,
    ratio: seconds / ideal,
    dark_p50_s: percentile(dark, 50),
    dark_p99_s: percentile(dark, 99),
    dark_max_s: Math.max(...dark),
    start_end_p50_s: percentile(span, 50),
    start_end_p99_s: percentile(span, 99),
    starts_per_s: starts,
    saturated: status.dark?.saturated ?? null,
    still_dark: stillDark,
    peak_connections: peakConnections,
    cpu_s: cpu,
    pg_sessions: sessions,
    peak_rss_mib: peaks,
  }),
);

// Stopped as an operator stops them (a worker run with --cpu-prof writes its profile as it exits); killed past 10 s.
await Promise.all(Object.values(children).map((c) => stopChild(c, 10_000)));
await closeContext(ctx);
await Promise.all([redis.stop(), pg.stop(), couch.stop()]);
process.exit(0);

/**
 * How long each job held its slot (BullMQ active, counted in the queue's
 * global concurrency) before its org's claim, and after its completion: a
 * slot held while its org is not in flight is a start the run makes later.
 */
async function slotOutsideOrg(runId: string, orgRows: { org_id: string; start_s: number; end_s: number }[]): Promise<string> {
  const jobs = await ctx.queues[T].getJobs(['completed'], 0, N + 100);
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const before: number[] = [];
  const after: number[] = [];
  for (const org of orgRows) {
    const job = byId.get(orgJobId(runId, org.org_id));
    if (!job?.processedOn || !job.finishedOn) continue;
    before.push(Number(org.start_s) * 1000 - job.processedOn);
    after.push(job.finishedOn - Number(org.end_s) * 1000);
  }
  const ms = (xs: number[], p: number) => percentile(xs, p).toFixed(0);
  return `before the claim p50 ${ms(before, 50)} ms, p99 ${ms(before, 99)} ms; after the completion p50 ${ms(after, 50)} ms, p99 ${ms(after, 99)} ms (${before.length} jobs)`;
}

/** Redis commands since RESETSTAT, by name (a script's own commands counted too: they are the server's work), most called first. */
async function redisCommandCounts(): Promise<[string, number][]> {
  const info = await ctx.queueRedis.info('commandstats');
  return [...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)]
    .map(([, c, n]): [string, number] => [c, Number(n)])
    .filter(([c]) => !['info', 'config'].includes(c))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 14);
}

/** Postgres statements since the reset, by text (its first 110 characters, on one line), with their execution time, most called first. */
async function pgStatementCounts(): Promise<{ calls: number; ms: number; query: string }[]> {
  const { rows } = await ctx.db.query(
    `SELECT calls::int, total_exec_time::float8 AS ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS query FROM pg_stat_statements
     WHERE query NOT LIKE '%pg_stat_%' ORDER BY calls DESC`,
  );
  return rows;
}

/** The workers' step histograms (where an org's slot goes beyond the drain wait), read before and after the measured run. */
type StepSums = { steps: Map<string, { sum: number; count: number; over: number }>; perWorker: number[] };

/** The workers' step histograms as they stand: each step's time summed, its count, and the count past 0.5 s; and the orgs each worker copied. */
async function stepSums(ports: number[]): Promise<StepSums> {
  const steps: StepSums['steps'] = new Map();
  const perWorker: number[] = [];
  for (const port of ports) {
    const before = steps.get('migrate')?.count ?? 0;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const m of text.matchAll(/^mover_step_duration_seconds_(sum|count|bucket)\{([^}]*)\} ([\d.e+-]+)$/gm)) {
      const step = /step="([^"]+)"/.exec(m[2])?.[1];
      if (!step || !m[2].includes(`migration_type="${T}"`)) continue;
      const e = steps.get(step) ?? { sum: 0, count: 0, over: 0 };
      if (m[1] === 'sum') e.sum += Number(m[3]);
      else if (m[1] === 'count') e.count += Number(m[3]);
      else if (m[2].includes('le="0.5"')) e.over -= Number(m[3]);
      steps.set(step, e);
    }
    perWorker.push((steps.get('migrate')?.count ?? 0) - before);
  }
  return { steps, perWorker };
}

/** Each step's mean time between two readings (the measured run's, not the warm-up's), and the share of its runs past 0.5 s. */
function stepTimes(a: StepSums, b: StepSums): string {
  const zero = { sum: 0, count: 0, over: 0 };
  return [...b.steps]
    .map(([step, y]) => {
      const x = a.steps.get(step) ?? zero;
      const e = { sum: y.sum - x.sum, count: y.count - x.count, over: y.over - x.over };
      return `${step} ${((e.sum / e.count) * 1000).toFixed(0)} ms (${((100 * (e.count + e.over)) / e.count).toFixed(1)}% > 0.5 s)`;
    })
    .join(', ')
    .concat(`; orgs copied by each worker: ${b.perWorker.map((n, i) => n - (a.perWorker[i] ?? 0)).join(' / ')}`);
}
