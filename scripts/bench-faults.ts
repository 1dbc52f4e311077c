// npm run bench:faults — what a store fault costs a run: 600 orgs (BENCH_ORGS)
// through 3 worker processes and an api process (as the Procfile starts them)
// over a private redis-server and PostgreSQL and a CouchDB behind a proxy
// that can be cut. One run with no fault, then one per fault: 20 worker
// SIGKILLs (each worker replaced at once, as a supervisor would), Redis crash
// + restart after 3 s, Postgres crash + restart after 3 s, CouchDB
// unreachable for 10 s. (A real CouchDB comes by URL and is not ours to
// SIGKILL: the CouchDB crash of FAULTS.md's 2026-12-03 rows is not run.) For
// each: orgs completed / failed / stuck (started) / dark, processes that
// exited on their own, and the seconds the fault added. Last, pauses: the
// workers (JOB_LOCK_MS 6000) and the api SIGSTOPped and SIGCONTed at random
// while Chef writes to the orgs, with Chef's acknowledged writes lost and how
// long an org stayed dark after a pause.
//   BENCH_ORGS (600)  BENCH_CONCURRENCY (12)  BENCH_DRAIN_WAIT_MS (500)
//   BENCH_COUCHDB_URL: unset, PouchDB Server in memory; a real CouchDB's URL, credentials in it (scripts/lib/couch.ts).
import type { ChildProcess } from 'node:child_process';
import { closeContext, createContext, type Context } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { getRun } from '../src/db/runs.js';
import { setSetting } from '../src/db/settings.js';
import { readyHolding } from '../src/db/state-tracker.js';
import { getOrgState } from '../src/db/org-states.js';
import { seedDarklaunchDefaults, seedEstate, type SeededOrg } from '../dev/estate.js';
import { startCutProxy, startPrivatePostgres, startPrivateRedis } from '../dev/private-stores.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { captureOrgs } from '../src/migration/capture.js';
import { startRun } from '../src/runs/manager.js';
import { couchChoice, describeCouch, startCouch, withCredentialsOf } from './lib/couch.js';
import { benchConfig, spawnMover } from './lib/fleet.js';
import { ChefWriter } from '../dev/chef-writer.js';
import { DarkWatch, PauseChaos, seeded } from '../dev/pause-chaos.js';
import { orgLeaseMs } from '../src/frame/org-lease.js';

const N = Number(process.env.BENCH_ORGS ?? 600);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 12);
const DRAIN_WAIT_MS = Number(process.env.BENCH_DRAIN_WAIT_MS ?? 500);
const WORKERS = 3;
const T = 'phase_2_migration';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const choice = await couchChoice();
if (choice.kind === 'url' && new URL(choice.url).protocol !== 'http:') {
  console.error('bench:faults cuts CouchDB with a TCP proxy, which passes plain http only: give BENCH_COUCHDB_URL as an http:// URL');
  process.exit(1);
}
const [redis, pg, server] = await Promise.all([startPrivateRedis(), startPrivatePostgres(), startCouch(choice)]);
const serverUrl = new URL(server.url);
// The workers reach CouchDB through the proxy (a TCP proxy: the credentials go in its URL); seeding goes straight to it.
const couch = await startCutProxy(Number(serverUrl.port || 80), serverUrl.hostname);
const config = {
  ...(await benchConfig(
    { databaseUrl: pg.url, redisUrl: redis.url, couchdbUrl: withCredentialsOf(couch.url, server.url) },
    'bench-faults',
    Math.ceil(CONCURRENCY / WORKERS),
  )),
  ...(server.accountDb !== 'opscode_account' ? { couchdbAccountDb: server.accountDb } : {}),
};
const ctx: Context = createContext(config, createLogger('silent', 'bench-faults'));
await migrate(ctx.db);
await seedDarklaunchDefaults(ctx.darklaunchRedis);
await setSetting(ctx.db, 'drainWaitMs', DRAIN_WAIT_MS);

interface Proc {
  name: string;
  child: ChildProcess;
  killedOnPurpose: boolean;
}
const procs: Proc[] = [];
let exitedOnTheirOwn = 0;
function spawnProcess(name: string, entry: 'api/server' | 'workers/worker', extra: Record<string, string> = {}): Proc {
  const p: Proc = {
    name,
    child: spawnMover(config, entry, { WORKER_CONCURRENCY: String(config.workerConcurrency), LOG_LEVEL: 'silent', ...extra }),
    killedOnPurpose: false,
  };
  p.child.on('exit', () => {
    if (!p.killedOnPurpose) exitedOnTheirOwn++;
  });
  procs.push(p);
  return p;
}
for (let i = 1; i <= WORKERS; i++) spawnProcess(`worker-${i}`, 'workers/worker');
spawnProcess('api', 'api/server', { PORT: String(config.port) });

let batch = 0;
async function prepare(): Promise<SeededOrg[]> {
  batch++;
  const orgs = await seedEstate(
    server.url,
    Array.from({ length: N }, (_, i) => ({ name: `b${batch}-org-${String(i).padStart(4, '0')}` })),
    { parallel: 8, accountDb: server.accountDb },
  );
  await accountRefresh.refreshAccounts(ctx);
  const names = orgs.map((o) => o.name);
  await captureOrgs(ctx.db, T, names);
  await readyHolding(ctx.db, T, names);
  return orgs;
}

/** What a fault may report once its run has ended (the pause case: its writer's and watch's figures). */
type Afterwards = () => Promise<Record<string, string | number>>;

async function measure(label: string, fault?: (runId: string, orgs: SeededOrg[]) => Promise<void | Afterwards>): Promise<Record<string, string | number>> {
  const orgs = await prepare();
  const before = exitedOnTheirOwn;
  const t0 = Date.now();
  const { run } = await startRun(ctx, T, { count: 'all', concurrency: CONCURRENCY });
  let afterwards: void | Afterwards = undefined;
  if (fault) {
    while (((await getRun(ctx.db, run.id))?.orgs_finished ?? 0) < N / 4) await sleep(100);
    afterwards = await fault(run.id, orgs);
  }
  const deadline = Date.now() + 15 * 60_000;
  let end = await getRun(ctx.db, run.id);
  while (end?.state !== 'ready' && Date.now() < deadline) {
    await sleep(250);
    end = await getRun(ctx.db, run.id).catch(() => end);
  }
  const seconds = (Date.now() - t0) / 1000;
  let completed = 0;
  let failed = 0;
  let stuck = 0;
  let dark = 0;
  for (const o of orgs) {
    const state = (await getOrgState(ctx.db, T, o.name))?.state;
    if (state === 'completed') completed++;
    else if (state === 'failed') failed++;
    else if (state === 'started') stuck++;
    if ((await ctx.darklaunchRedis.hget(`dl_org_${o.name}`, '503_mode')) === 'true') dark++;
  }
  const row = {
    fault: label,
    orgs: N,
    completed,
    failed,
    stuck,
    dark,
    exited: exitedOnTheirOwn - before,
    run_s: Number(seconds.toFixed(1)),
    ended: end?.state === 'ready' ? 'yes' : 'NO',
    ...(afterwards ? await afterwards() : {}),
  };
  console.log(JSON.stringify(row));
  return row;
}

const rows: Record<string, string | number>[] = [];
console.log(describeCouch(server));
console.log(
  `${N} orgs a run, ${WORKERS} worker processes, concurrency ${CONCURRENCY}, drain wait ${DRAIN_WAIT_MS} ms, STORE_OUTAGE_GRACE_MS 60000, JOB_LOCK_MS 30000`,
);
rows.push(await measure('none (baseline)'));
rows.push(
  await measure('20 worker SIGKILLs, each replaced at once', async () => {
    for (let k = 0; k < 20; k++) {
      const workers = procs.filter((p) => p.name.startsWith('worker') && p.child.exitCode === null && p.child.signalCode === null);
      const victim = workers[k % workers.length];
      victim.killedOnPurpose = true;
      victim.child.kill('SIGKILL');
      procs.splice(procs.indexOf(victim), 1);
      spawnProcess(victim.name, 'workers/worker');
      await sleep(1500);
    }
  }),
);
rows.push(
  await measure('Redis crash, restarted from its AOF after 3 s', async () => {
    await redis.crash();
    await sleep(3000);
    await redis.restart();
  }),
);
rows.push(
  await measure('Postgres crash (immediate), restarted after 3 s', async () => {
    await pg.crash();
    await sleep(3000);
    await pg.restart();
  }),
);
rows.push(
  await measure('CouchDB unreachable for 10 s', async () => {
    await couch.down();
    await sleep(10_000);
    await couch.up();
  }),
);
if (server.kind === 'url') console.log('(no CouchDB kill: BENCH_COUCHDB_URL names a CouchDB this process did not start)');

// Pauses: the workers as the issue tried them, JOB_LOCK_MS 6000 (a 2 s lease), each paused (SIGSTOP, then SIGCONT)
// for 1 to 8 s (0.5 to 4 leases; every third past the job lock, so BullMQ hands its jobs to another worker), and the
// api too, from a quarter of the run to three quarters, while Chef writes to the run's orgs (dev/chef-writer.ts).
const PAUSE_JOB_LOCK_MS = 6000;
const lease = orgLeaseMs(PAUSE_JOB_LOCK_MS);
for (const p of procs.filter((x) => x.child.exitCode === null)) {
  p.killedOnPurpose = true;
  p.child.kill('SIGKILL');
}
procs.length = 0;
for (let i = 1; i <= WORKERS; i++) spawnProcess(`worker-${i}`, 'workers/worker', { JOB_LOCK_MS: String(PAUSE_JOB_LOCK_MS) });
spawnProcess('api', 'api/server', { PORT: String(config.port), JOB_LOCK_MS: String(PAUSE_JOB_LOCK_MS) });
const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
rows.push(
  await measure(`pauses of workers and the api, 1-8 s each (seed ${seed}), Chef writing`, async (runId, orgs) => {
    const random = seeded(seed);
    const chef = new ChefWriter({ redis: ctx.darklaunchRedis, db: ctx.db, couchUrl: server.url, accountDb: server.accountDb }, DRAIN_WAIT_MS / 2);
    const dark = new DarkWatch(
      ctx.darklaunchRedis,
      orgs.map((o) => o.name),
    );
    const chaos = new PauseChaos(() => procs, {
      minMs: lease / 2,
      maxMs: 4 * lease,
      gapMs: 1500,
      random,
      long: { every: 3, minMs: PAUSE_JOB_LOCK_MS + 500 },
    });
    const stopWriting = chef.writeOn(orgs, random);
    dark.start();
    chaos.start();
    while (((await getRun(ctx.db, runId))?.orgs_finished ?? 0) < (3 * N) / 4) await sleep(250);
    await chaos.stop();
    return async () => {
      await stopWriting();
      await dark.stop();
      const worst = dark.worstAfterPauses(chaos.pauses);
      return {
        pauses: chaos.pauses.length,
        past_job_lock: chaos.pauses.filter((p) => p.to - p.from > PAUSE_JOB_LOCK_MS).length,
        acked: chef.acked.length,
        failed_requests: chef.failed.length,
        lost: (await chef.lost()).length,
        dark_after_pause_ms: worst?.ms ?? 0,
        dark_now: dark.darkNow.length,
      };
    };
  }),
);

const base = Number(rows[0].run_s);
console.log(`\n${server.version}`);
console.log('| fault | completed | failed | stuck | dark | processes exited | run (s) | added (s) |\n|---|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.fault} | ${r.completed} / ${r.orgs} | ${r.failed} | ${r.stuck} | ${r.dark} | ${r.exited} | ${r.run_s}${r.ended === 'yes' ? '' : ' (did not end)'} | ${r === rows[0] ? '—' : (Number(r.run_s) - base).toFixed(1)} |`,
  );
const paused = rows.at(-1)!;
console.log(
  `\npauses: ${paused.pauses} (${paused.past_job_lock} past the job lock); Chef's acknowledged writes: ${paused.acked}, lost: ${paused.lost}; longest an org stayed dark after the last pause that could explain it: ${paused.dark_after_pause_ms} ms (drain ${DRAIN_WAIT_MS} ms + 2 leases ${2 * lease} ms); dark at the end: ${paused.dark_now}`,
);

for (const p of procs) {
  p.killedOnPurpose = true;
  p.child.kill('SIGKILL');
}
await closeContext(ctx);
await Promise.all([redis.stop(), pg.stop(), couch.close(), server.stop()]);
process.exit(0);
