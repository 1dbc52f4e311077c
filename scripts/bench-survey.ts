// npm run bench:survey — the estate survey at scale (BENCHMARKS.md): BENCH_ORGS
// (10000) generated orgs of 12 containers, 4 groups and 2 other documents each
// in a CouchDB (PouchDB Server in memory, or the real CouchDB BENCH_COUCHDB_URL
// names: scripts/lib/couch.ts), over a private redis-server and
// PostgreSQL; BENCH_WORKERS (2) worker processes and an api, as the Procfile
// starts them with default settings. One survey at BENCH_CONCURRENCY (8)
// batches at once, timed from its start to its end, with every process's
// peak RSS (the target: 10,000 orgs in 60 s on real CouchDB 3.x, every
// process at most 200 MB); then GET /survey and the whole CSV read from the
// api, so its RSS includes streaming every org's row. BENCH_CPU_PROF=<dir>: the
// workers write V8 CPU profiles there as they exit.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SurveyView } from '../src/cli/replies.js';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { seedDarklaunchDefaults, seedEstate } from '../dev/estate.js';
import { startPrivatePostgres, startPrivateRedis } from '../dev/private-stores.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { startSurvey } from '../src/runs/survey.js';
import { couchChoice, describeCouch, startCouch } from './lib/couch.js';
import { benchConfig, spawnMover, stopChild, waitForRunEnd } from './lib/fleet.js';
import { cpuSeconds, sampleRss } from './lib/samplers.js';

const N = Number(process.env.BENCH_ORGS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const TARGET_S = 60;
const TARGET_RSS_MIB = 200;

const choice = await couchChoice();
const [redis, pg, couch] = await Promise.all([startPrivateRedis(), startPrivatePostgres(), startCouch(choice)]);
console.log(describeCouch(couch));
const config = {
  ...(await benchConfig({ databaseUrl: pg.url, redisUrl: redis.url, couchdbUrl: couch.url }, 'bench-survey')),
  ...(couch.accountDb !== 'opscode_account' ? { couchdbAccountDb: couch.accountDb } : {}),
};
const ctx = createContext(config, createLogger('silent', 'bench-survey'), { dbPoolSize: 4 });
await migrate(ctx.db);
await seedDarklaunchDefaults(ctx.darklaunchRedis);

const t0 = Date.now();
// A thousand orgs at a time, so this process holds little of the estate while the survey runs beside it.
for (let from = 0; from < N; from += 1000) {
  const specs = Array.from({ length: Math.min(1000, N - from) }, (_, i) => ({
    name: `survey-${String(from + i).padStart(6, '0')}`,
    containers: 12,
    groups: 4,
    otherDocs: 2,
  }));
  await seedEstate(couch.url, specs, { parallel: 8, accountDb: couch.accountDb });
}
await accountRefresh.refreshAccounts(ctx);
console.log(`estate of ${N} orgs (12 containers, 4 groups, 2 other documents each) seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const children: Record<string, ChildProcess> = {};
const PROF = process.env.BENCH_CPU_PROF;
for (let i = 1; i <= WORKERS; i++) children[`worker-${i}`] = spawnMover(config, 'workers/worker', {}, PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`] : []);
children.api = spawnMover(config, 'api/server', { PORT: String(config.port) });
await sleep(3000); // the processes start (tsx compiles them) before the clock starts

const [couchPid] = couch.pids();
const rss = sampleRss(() => ({
  ...Object.fromEntries(Object.entries(children).map(([n, c]) => [n, c.pid ?? 0])),
  bench: process.pid,
  ...(couchPid ? { couchdb: couchPid } : {}),
}));
// CPU seconds of the mover processes and CouchDB's (its process tree) over the survey, and of the whole machine.
const machineBusy = () => {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return (ticks.reduce((a, b) => a + b, 0) - ticks[3] - ticks[4]) / 100; // all but idle and iowait, in 1/100 s ticks
};
const cpu = () => ({
  workers: Object.entries(children)
    .filter(([n]) => n.startsWith('worker'))
    .reduce((a, [, c]) => a + cpuSeconds(c.pid ?? 0), 0),
  couchdb: couch.pids().reduce((a, pid) => a + cpuSeconds(pid), 0),
  machine: machineBusy(),
});
const cpuBefore = cpu();
const started = Date.now();
const run = await startSurvey(ctx, CONCURRENCY);
const ended = await waitForRunEnd(ctx.db, run.id, 30 * 60_000);
const seconds = (Date.now() - started) / 1000;
const cpuAfter = cpu();
const cpuMsPerOrg = Object.fromEntries(
  (['workers', 'couchdb', 'machine'] as const).map((k) => [k, Math.round(((cpuAfter[k] - cpuBefore[k]) * 1000 * 10) / N) / 10]),
);

// What an operator reads next, from the api: the totals, and every org as CSV (streamed).
const api = `http://127.0.0.1:${config.port}`;
const auth = { authorization: `Bearer ${config.apiToken}` };
const status = (await (await fetch(`${api}/survey`, { headers: auth })).json()) as SurveyView;
const csvStarted = Date.now();
const csv = await (await fetch(`${api}/survey/orgs.csv`, { headers: auth })).text();
const csvRows = csv.split('\r\n').filter(Boolean).length - 1;
const csvSeconds = (Date.now() - csvStarted) / 1000;
const peaks = rss.stop();

const moverPeak = Math.max(
  ...Object.entries(peaks)
    .filter(([n]) => n !== 'couchdb' && n !== 'bench')
    .map(([, v]) => v),
);
console.log(`\n${N} orgs, ${WORKERS} worker processes (default WORKER_CONCURRENCY), survey concurrency ${CONCURRENCY} batches, ${couch.version}`);
console.log(`| orgs surveyed | survey time | orgs/s | copy ms per org (mean) | CSV (${csvRows} rows) | peak RSS, mover processes | verdict |`);
console.log(`|---|---|---|---|---|---|---|`);
console.log(
  `| ${ended.orgs_finished} / ${N} | **${seconds.toFixed(1)} s** | ${(N / seconds).toFixed(0)} | ${status.copy_ms_mean} | ${csvSeconds.toFixed(1)} s | ${moverPeak.toFixed(0)} MiB | ${seconds <= TARGET_S ? 'time met' : 'time MISSED'} (≤ ${TARGET_S} s), ${moverPeak <= TARGET_RSS_MIB ? 'memory met' : 'memory MISSED'} (≤ ${TARGET_RSS_MIB} MiB) |`,
);
console.log(
  `peak RSS (MiB): ${Object.entries(peaks)
    .map(([n, v]) => `${n} ${v.toFixed(0)}`)
    .join(', ')}`,
);
console.log(`CPU ms per org: workers ${cpuMsPerOrg.workers}, CouchDB ${cpuMsPerOrg.couchdb}, whole machine ${cpuMsPerOrg.machine} (${os.cpus().length} cores)`);
console.log(`survey state ${status.state}; findings: ${JSON.stringify(Object.fromEntries(Object.entries(status.totals).filter(([, n]) => n)))}`);
console.log(`estimate: ${JSON.stringify(status.estimate)}`);
console.log(
  JSON.stringify({
    bench: 'survey',
    couchdb: couch.version,
    orgs: N,
    workers: WORKERS,
    concurrency: CONCURRENCY,
    surveyed: ended.orgs_finished,
    state: status.state,
    survey_s: seconds,
    orgs_per_s: N / seconds,
    copy_ms_mean: status.copy_ms_mean,
    cpu_ms_per_org: cpuMsPerOrg,
    csv_rows: csvRows,
    csv_s: csvSeconds,
    peak_rss_mib: peaks,
  }),
);

// Profiled workers are stopped as an operator stops them: a worker writes its CPU profile as it exits.
if (PROF) await Promise.all(Object.values(children).map((c) => stopChild(c, 10_000)));
else for (const c of Object.values(children)) c.kill('SIGKILL');
await closeContext(ctx);
await Promise.all([redis.stop(), pg.stop(), couch.stop()]);
process.exit(0);
