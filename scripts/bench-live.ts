// npm run bench:live — the live-service guard: does a migration at full
// concurrency hurt Chef's live traffic on CouchDB, and does the operator's
// CouchDB latency budget keep that traffic within it? Chef's traffic is
// scripts/lib/chef-load.ts: BENCH_LIVE_RPS (50) requests a second, open loop,
// over every org database of the estate, timed from when each was due
// (PouchDB Server with 2400 databases on 2 shared cores serves about 100 a
// second at most; a real CouchDB takes more: raise it there). First
// BENCH_BASELINE_S (20) s of that traffic alone, after 5 s of warm-up: its p99
// there sets the budget (BENCH_BUDGET_MS, default twice that p99). Then two
// runs, each of its own fresh half of the BENCH_ORGS (2400) orgs, at
// BENCH_CONCURRENCY (300), drain wait BENCH_DRAIN_WAIT_MS (5000): guard off
// (budget 0), then guard on (PUT /settings/couchdb-budget; BENCH_GUARD_FIRST=1
// swaps them), each once the traffic's p99 is back within the budget after at
// least 10 s idle. The claim: guard off, the traffic's p99 breaks the budget;
// guard on, it stays within 1.1× the budget and orgs still complete. A run
// past BENCH_RUN_LIMIT_S (300) s is halted. Stores as bench:pacing's: a
// private redis-server and PostgreSQL, a CouchDB (PouchDB Server in memory,
// or BENCH_COUCHDB_URL's), 3 worker processes and an api (BENCH_DIST=1 starts
// them from the build).
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { seedDarklaunchDefaults, seedEstate } from '../dev/estate.js';
import { startPrivatePostgres, startPrivateRedis } from '../dev/private-stores.js';
import { throwawayServers } from '../dev/processes.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { captureOrgs } from '../src/migration/capture.js';
import { startChefLoadThread, summarize, type LoadSummary } from './lib/chef-load.js';
import { couchChoice, describeCouch, startCouch } from './lib/couch.js';
import { benchConfig, spawnMover } from './lib/fleet.js';
import { apiAt, measureRun, setBudget, settle, type RunResult } from './lib/live-run.js';

const N = Number(process.env.BENCH_ORGS ?? 2400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 300);
const RPS = Number(process.env.BENCH_LIVE_RPS ?? 50);
const DRAIN_MS = Number(process.env.BENCH_DRAIN_WAIT_MS ?? 5000);
const BASELINE_S = Number(process.env.BENCH_BASELINE_S ?? 20);
const LIMIT_S = Number(process.env.BENCH_RUN_LIMIT_S ?? 300);
/** Before each run: the fleet idle at least this long, and until the traffic's p99 is back within the budget (at most SETTLE_MAX_S). */
const SETTLE_S = 10;
const SETTLE_MAX_S = 120;
const WARMUP_S = 5;
const WORKERS = 3;
const T = 'phase_2_migration';

// The stores in process groups of their own: a Ctrl-C reaches this script, which stops them itself (below).
throwawayServers.ownProcessGroup = true;
/** What the bench made, undone last made first however it ends: processes, then the stores, the CouchDB last. */
const teardown: (() => Promise<unknown>)[] = [];
let ending: Promise<never> | undefined;
function shutdown(code: number, why?: string): Promise<never> {
  ending ??= (async () => {
    if (why) console.error(why);
    for (const undo of teardown.reverse()) await undo().catch((err: Error) => console.error(`cleaning up: ${err.message}`));
    process.exit(code);
  })();
  return ending;
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(130, `${signal}: stopping what bench:live started`));
process.on('uncaughtException', (err) => void shutdown(1, `bench:live failed: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => void shutdown(1, `bench:live failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));

const choice = await couchChoice();
const couch = await startCouch(choice);
teardown.push(() => couch.stop());
const [redis, pg] = await Promise.all([startPrivateRedis(), startPrivatePostgres()]);
teardown.push(
  () => pg.stop(),
  () => redis.stop(),
);
console.log(describeCouch(couch));
const config = {
  ...(await benchConfig({ databaseUrl: pg.url, redisUrl: redis.url, couchdbUrl: couch.url }, 'bench-live')),
  ...(couch.accountDb !== 'opscode_account' ? { couchdbAccountDb: couch.accountDb } : {}),
};
const ctx = createContext(config, createLogger('silent', 'bench-live'), { dbPoolSize: 4 });
teardown.push(() => closeContext(ctx));
await migrate(ctx.db);
await seedDarklaunchDefaults(ctx.darklaunchRedis);

// Two halves, one per run, so each run starts on orgs never migrated; the live traffic goes to all of them throughout.
const t0 = Date.now();
const half = Math.floor(N / 2);
const specs = ['off', 'on'].flatMap((g) => Array.from({ length: half }, (_, i) => ({ name: `live-${g}-${String(i).padStart(5, '0')}`, otherDocs: 3 })));
const orgs = await seedEstate(couch.url, specs, { parallel: 8, accountDb: couch.accountDb });
await accountRefresh.refreshAccounts(ctx);
const allNames = orgs.map((o) => o.name);
await captureOrgs(ctx.db, T, allNames);
console.log(`estate of ${orgs.length} orgs seeded and captured in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const children: ChildProcess[] = [];
teardown.push(async () => children.forEach((c) => c.kill('SIGKILL')));
for (let i = 1; i <= WORKERS; i++) children.push(spawnMover(config, 'workers/worker'));
children.push(spawnMover(config, 'api/server', { PORT: String(config.port) }));
const api = apiAt(`http://127.0.0.1:${config.port}`, config.apiToken);
for (let tries = 0; ; tries++) {
  // Refused until the api listens: said only if it never does.
  const up = await api('GET', '/healthz').catch((err: Error) => err);
  if (!(up instanceof Error) && up.status === 200) break;
  if (tries > 300) throw new Error(`the api did not answer /healthz in 30 s: ${up instanceof Error ? up.message : `HTTP ${up.status}`}`);
  await sleep(100);
}
if (DRAIN_MS !== 5000) await api('PUT', '/settings/drain-wait', { ms: DRAIN_MS, acknowledge_risk: true });
const budgetBefore = await setBudget(api, 0);

const load = startChefLoadThread(couch.url, orgs, RPS);
teardown.push(() => load.stop());
// The traffic's first seconds (its first nodes created, code not yet optimized) are not its steady state.
await sleep(WARMUP_S * 1000);
const baselineFrom = Date.now();
await sleep(BASELINE_S * 1000);
const baseline = summarize(load.samples, baselineFrom, Date.now());
const budget = Number(process.env.BENCH_BUDGET_MS ?? Math.max(1, Math.ceil(2 * baseline.p99)));
console.log(
  `live traffic alone, ${BASELINE_S} s at ${RPS} requests/s: p50 ${baseline.p50} ms, p99 ${baseline.p99} ms, max ${baseline.max} ms; budget p99 ${budget} ms${process.env.BENCH_BUDGET_MS ? ' (BENCH_BUDGET_MS)' : ' (2 × baseline p99)'}`,
);

if (baseline.errors > baseline.requests / 100 || baseline.p50 > 1000) {
  // An open loop past the server's capacity only queues: every later number would be the timeout.
  console.error(
    `the live traffic alone overloads this CouchDB (${baseline.errors} of ${baseline.requests} requests failed or got no answer, p50 ${baseline.p50} ms${load.lastError() ? `, e.g. ${load.lastError()}` : ''}): lower BENCH_LIVE_RPS`,
  );
  await shutdown(1);
}
const results: RunResult[] = [];
/** The traffic in the last 5 s before each run: a CouchDB still catching up on the run before would show here. */
const before: LoadSummary[] = [];
const guardAbsent = budgetBefore === 'absent';
const runs = [['guard off', 'off', 0] as const, ['guard on', 'on', budget] as const];
// The later run meets a CouchDB grown by the traffic's nodes: BENCH_GUARD_FIRST=1 swaps the order, to see what that weighs.
if (process.env.BENCH_GUARD_FIRST === '1') runs.reverse();
for (const [label, set, p99Ms] of runs) {
  await setBudget(api, p99Ms);
  before.push(await settle(load, budget, SETTLE_S, SETTLE_MAX_S));
  const names = orgs.filter((o) => o.name.startsWith(`live-${set}-`)).map((o) => o.name);
  console.log(`${label}: ${names.length} orgs at concurrency ${CONCURRENCY}${p99Ms ? `, budget p99 ${p99Ms} ms` : ''}`);
  results.push(await measureRun(ctx, api, load, label, names, CONCURRENCY, LIMIT_S));
}
await setBudget(api, 0);
await load.stop();

const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(0)} ms` : '–');
const row = (name: string, base: string, f: (r: RunResult, i: number) => string) => console.log(`| ${name} | ${base} | ${results.map(f).join(' | ')} |`);
console.log(
  `\n${N} orgs (${half} a run), ${WORKERS} worker processes, concurrency ${CONCURRENCY}, drain wait ${DRAIN_MS} ms, live traffic ${RPS} requests/s, budget p99 ${budget} ms, ${couch.version}`,
);
if (guardAbsent) console.log('NOTE: this build has no PUT /settings/couchdb-budget (404): the "guard on" run ran unguarded');
console.log(`| | traffic alone | ${results.map((r) => r.label).join(' | ')} |`);
console.log(`|---|---|${results.map(() => '---').join('|')}|`);
row('live p99, 5 s before', '–', (_, i) => ms(before[i].p99));
row('live p50', ms(baseline.p50), (r) => ms(r.live.p50));
row('live p99', ms(baseline.p99), (r) => `**${ms(r.live.p99)}**`);
row('live p99 / budget', (baseline.p99 / budget).toFixed(2), (r) => `**${(r.live.p99 / budget).toFixed(2)}×**`);
row('live max', ms(baseline.max), (r) => ms(r.live.max));
row('live requests (errors)', `${baseline.requests} (${baseline.errors})`, (r) => `${r.live.requests} (${r.live.errors})`);
row('orgs completed / failed', '–', (r) => `${r.completed} / ${r.failed} of ${half}`);
row('orgs/s', '–', (r) => `**${(r.completed / r.seconds).toFixed(1)}**`);
row('dark p99', '–', (r) => `${r.darkP99S.toFixed(2)} s`);
row('run time', `${BASELINE_S} s`, (r) => `${r.seconds.toFixed(1)} s${r.halted ? ' (halted)' : ''}`);
for (const r of results) {
  console.log(`${r.label}, live p99 each 5 s (ms): ${r.windows.map((v) => (Number.isFinite(v) ? v : '–')).join(' ')}`);
  if (r.effective.some((v) => v !== null)) console.log(`${r.label}, effective concurrency each 5 s: ${r.effective.map((v) => v ?? '–').join(' ')}`);
}
const [off, on] = ['guard off', 'guard on'].map((l) => results.find((r) => r.label === l)!);
console.log(
  `guard off: p99 ${off.live.p99 > budget ? 'breaks' : 'stays within'} the budget; guard on: p99 ${on.live.p99 <= 1.1 * budget ? 'within' : 'OVER'} 1.1× the budget, ${on.completed} orgs completed`,
);
if (results.some((r) => r.live.max >= 10_000)) console.log("(10 s is the live traffic's timeout: a request that got no answer counts as 10 s)");
console.log(`live traffic: its own thread's event loop was held up ${load.loopDelayMaxMs().toFixed(0)} ms at most (a delay there would count as CouchDB's)`);
if (load.dropped()) console.log(`live traffic: ${load.dropped()} requests not sent (over 2000 waiting for an answer)`);
if (load.lastError()) console.log(`live traffic: requests got no answer, the last with: ${load.lastError()}`);
console.log(
  JSON.stringify({
    bench: 'live',
    couchdb: couch.version,
    orgs: N,
    concurrency: CONCURRENCY,
    rps: RPS,
    drain_wait_ms: DRAIN_MS,
    budget_p99_ms: budget,
    guard_in_build: !guardAbsent,
    baseline,
    runs: results.map((r, i) => ({ ...r, before: before[i], orgs_per_s: r.completed / r.seconds })),
  }),
);
await shutdown(0);
