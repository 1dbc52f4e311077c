// npm run bench:cluster — the queue Redis as a 3-master Redis Cluster (issue
// 10, item 4), made here on free ports, with the darklaunch Redis a single
// server apart: BENCH_ORGS (1000) clean orgs through 3 worker processes at
// concurrency BENCH_CONCURRENCY (24), drain wait 0; then a paced run (sleep
// time 1 s, concurrency 4, 40 orgs). Prints the time, the most orgs in
// flight at once (from the state rows' start and end) against the
// concurrency, and the paced run's length and its most starts in any sliding
// second against what the limiter's fixed windows allow: both limits held
// fleet-wide through the cluster.
import type { ChildProcess } from 'node:child_process';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { setSetting } from '../src/db/settings.js';
import { readyHolding } from '../src/db/state-tracker.js';
import { seedEstate } from '../dev/estate.js';
import { startPrivateRedisCluster } from '../dev/private-stores.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { captureOrgs } from '../src/migration/capture.js';
import { startRun } from '../src/runs/manager.js';
import { spawnMover, waitForRunEnd } from './lib/fleet.js';
import { checkServicesOrExit, createStack } from './lib/stack.js';

const N = Number(process.env.BENCH_ORGS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 24);
const T = 'phase_2_migration';

await checkServicesOrExit();
const cluster = await startPrivateRedisCluster(3);
const stack = await createStack('cluster', { redisCluster: true });
const config = { ...stack.config, redisUrl: cluster.url };
const ctx = createContext(config, createLogger('silent', 'bench-cluster'), { dbPoolSize: 4 });
await migrate(ctx.db);
await setSetting(ctx.db, 'drainWaitMs', 0);

const children: ChildProcess[] = [];
for (let i = 0; i < 3; i++) {
  children.push(spawnMover(config, 'workers/worker', { REDIS_CLUSTER: 'true' }));
}

async function runOrgs(prefix: string, n: number, concurrency: number) {
  const orgs = await seedEstate(
    stack.couch.url,
    Array.from({ length: n }, (_, i) => ({ name: `${prefix}-${String(i).padStart(5, '0')}` })),
    { parallel: 8, accountDb: stack.couch.accountDb },
  );
  await accountRefresh.refreshAccounts(ctx);
  const names = orgs.map((o) => o.name);
  await captureOrgs(ctx.db, T, names);
  await readyHolding(ctx.db, T, names);
  const t0 = Date.now();
  const { run } = await startRun(ctx, T, { count: 'all', concurrency });
  await waitForRunEnd(ctx.db, run.id, 15 * 60_000, 100);
  const seconds = (Date.now() - t0) / 1000;
  const { rows } = await ctx.db.query(
    `SELECT state, extract(epoch FROM migration_start) * 1000 AS s, extract(epoch FROM migration_end) * 1000 AS e FROM org_migration_state WHERE migration_type = $1 AND org_name = ANY($2)`,
    [T, names],
  );
  const spans = rows.map((r) => ({ s: Number(r.s), e: Number(r.e) }));
  const peakInFlight = Math.max(...spans.map((x) => spans.filter((y) => y.s <= x.s && y.e > x.s).length));
  return { completed: rows.filter((r) => r.state === 'completed').length, seconds, peakInFlight, starts: spans.map((x) => x.s).sort((a, b) => a - b) };
}

// A run that is only as fast as the fleet is.
await new Promise((r) => setTimeout(r, 3000));
const free = await runOrgs('cl', N, CONCURRENCY);
console.log(
  `| free run | ${free.completed} / ${N} orgs | ${free.seconds.toFixed(1)} s (${(N / free.seconds).toFixed(0)} orgs/s) | most in flight ${free.peakInFlight} (concurrency ${CONCURRENCY}) |`,
);

// A paced run: at most `concurrency` starts per sleep-time window, fleet-wide.
await setSetting(ctx.db, 'sleepTimeMs', 1000);
const paced = await runOrgs('clp', 40, 4);
const window = 1000;
const mostInWindow = Math.max(...paced.starts.map((s) => paced.starts.filter((x) => x >= s && x < s + window).length));
// BullMQ's limiter counts fixed windows: 4 at the end of one and 4 at the start of the next may fall in one sliding second (8), but 40 orgs need at least 9 windows after the first.
console.log(
  `| paced run (sleep time 1 s, concurrency 4) | ${paced.completed} / 40 orgs | ${paced.seconds.toFixed(1)} s (at least 9 s at 4 per window) | most starts in any sliding 1 s: ${mostInWindow} (fixed windows of 4 allow 8), most in flight ${paced.peakInFlight} (concurrency 4) |`,
);
console.log(
  JSON.stringify({
    bench: 'cluster',
    orgs: N,
    concurrency: CONCURRENCY,
    completed: free.completed,
    run_s: free.seconds,
    peak_in_flight: free.peakInFlight,
    paced_completed: paced.completed,
    paced_run_s: paced.seconds,
    paced_most_starts_per_s: mostInWindow,
    paced_peak_in_flight: paced.peakInFlight,
  }),
);

for (const c of children) c.kill('SIGKILL');
await closeContext(ctx);
await stack.dropAll();
await cluster.stop();
process.exit(0);
