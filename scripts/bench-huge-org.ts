// npm run bench:huge-org — one huge org end to end: BENCH_GROUPS (5,000)
// groups, BENCH_CONTAINERS (2,000) containers and BENCH_OTHER_DOCS (100,000)
// other documents (nodes) in its CouchDB database. A worker process (as the
// Procfile starts it, METRICS_PORT set) migrates it, the org is reverted and
// migrated again, then purged; the time of each and the worker's peak RSS
// (sampled from its own process_resident_memory_bytes every 100 ms) are
// printed, and how long the huge org and a small one migrated beside it were
// dark: as mover recorded it (org_progress.dark_ms) and as its 503_mode,
// watched every 50 ms, showed it. BENCH_DRAIN_WAIT_MS (5000, the default)
// is the drain wait. The api runs in this process. BENCH_COUCHDB_URL: unset,
// PouchDB Server in memory; a real CouchDB's URL (scripts/lib/couch.ts).
import { buildApp } from '../src/api/app.js';
import type { RunStatus } from '../src/cli/replies.js';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { seedEstate } from '../dev/estate.js';
import { freePort } from '../dev/pouch-server.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { startRun } from '../src/runs/manager.js';
import { describeCouch } from './lib/couch.js';
import { createStack, ensureServices } from './lib/stack.js';
import { spawnMover } from './lib/fleet.js';

const GROUPS = Number(process.env.BENCH_GROUPS ?? 5000);
const CONTAINERS = Number(process.env.BENCH_CONTAINERS ?? 2000);
const OTHER = Number(process.env.BENCH_OTHER_DOCS ?? 100_000);
const DRAIN_MS = Number(process.env.BENCH_DRAIN_WAIT_MS ?? 5000);
const T = 'phase_2_migration';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const services = await ensureServices((s) => console.log(s));
const stack = await createStack('huge');
const ctx = createContext(stack.config, createLogger('silent', 'bench-huge-org'));
await migrate(ctx.db);
let t = Date.now();
console.log(describeCouch(stack.couch));
const [org] = await seedEstate(
  stack.couch.url,
  [
    { name: 'huge', groups: GROUPS, containers: CONTAINERS, otherDocs: OTHER },
    { name: 'small', otherDocs: 3 },
  ],
  { accountDb: stack.couch.accountDb },
);
console.log(`seeded ${GROUPS} groups, ${CONTAINERS} containers, ${OTHER} other documents in ${((Date.now() - t) / 1000).toFixed(1)} s`);
await accountRefresh.refreshAccounts(ctx);
const app = await buildApp(ctx);
const url = await app.listen({ host: '127.0.0.1', port: 0 });
/** The api's reply, of the type the caller names (src/cli/replies.ts: the route's own schema). */
const api = async <T = unknown>(method: string, path: string, body?: unknown) => {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${stack.config.apiToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return (await res.json()) as T;
};
await api('PUT', '/settings/drain-wait', { ms: DRAIN_MS, acknowledgeRisk: true });

/** Watches an org's own 503_mode every 50 ms: how long it was seen up, from the first sample that saw it to the first that did not. */
function watchDark(name: string) {
  let since: number | null = null;
  let seen = 0;
  let on = true;
  const done = (async () => {
    while (on) {
      const down = (await ctx.darklaunchRedis.hget(`dl_org_${name}`, '503_mode')) === 'true';
      if (down && since === null) since = Date.now();
      if (!down && since !== null) {
        seen += Date.now() - since;
        since = null;
      }
      await sleep(50);
    }
  })();
  return async () => {
    on = false;
    await done;
    return seen / 1000;
  };
}
const darkMs = async (name: string) =>
  Number((await ctx.db.query(`SELECT dark_ms FROM mover.org_progress WHERE migration_type = $1 AND org_name = $2`, [T, name])).rows[0]?.dark_ms) / 1000;

const metricsPort = await freePort();
const { config } = stack;
const worker = spawnMover(config, 'workers/worker', { LOG_LEVEL: 'silent', METRICS_PORT: String(metricsPort) });
let peak = 0;
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(
      (r) => r.text(),
      () => '',
    );
    const rss = Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? 0);
    peak = Math.max(peak, rss);
    await sleep(100);
  }
})();
while (!peak) await sleep(100);
const idle = peak;

async function runUntilEnd(type: string, body: unknown): Promise<number> {
  const t0 = Date.now();
  await api('POST', type === T ? `/migrations/${T}/start` : '/migrations/phase_2_revert/start', body);
  for (;;) {
    const s = await api<RunStatus>('GET', `/migrations/${type}/status`);
    if (['completed', 'halted', 'failed'].includes(s.state) && s.run_id) {
      if (s.objects_failed !== 0) throw new Error(`${type} ended with ${JSON.stringify(s)}`);
      return (Date.now() - t0) / 1000;
    }
    await sleep(100);
  }
}

await api('POST', `/migrations/${T}/orgs`, { orgs: ['huge', 'small'] });
await api('POST', `/migrations/${T}/ready`, {});
const watched = { huge: watchDark('huge'), small: watchDark('small') };
const migrateS = await runUntilEnd(T, { count: 'all', concurrency: 2 });
const dark = {
  huge: { recorded: await darkMs('huge'), watched: await watched.huge() },
  small: { recorded: await darkMs('small'), watched: await watched.small() },
};
const revertS = await runUntilEnd('phase_2_revert', { orgs: ['huge'] });
const again = await runUntilEnd(T, { count: 'all', concurrency: 1 });
t = Date.now();
// Phase 4's step 4.1: a purge run, on the fleet's workers.
await startRun(ctx, 'phase_2_purge', { count: 'all', concurrency: 4 });
let purged: RunStatus;
for (;;) {
  const s = await api<RunStatus>('GET', '/migrations/phase_2_purge/status');
  if (['completed', 'halted', 'failed'].includes(s.state) && s.run_id) {
    if (s.purged !== 1) throw new Error(`the purge ended with ${JSON.stringify(s)}`);
    purged = s;
    break;
  }
  await sleep(100);
}
const purgeS = (Date.now() - t) / 1000;
sampling = false;
await sampler;
const rows = await ctx.db.query(
  `SELECT (SELECT count(*) FROM containers WHERE org_id = $1)::int AS c, (SELECT count(*) FROM "groups" WHERE org_id = $1)::int AS g`,
  [org.guid],
);
console.log(`\n${stack.couch.version}`);
console.log(`| org | migrate (s) | revert (s) | migrate again (s) | purge (s) | worker RSS idle → peak |\n|---|---|---|---|---|---|`);
console.log(
  `| ${GROUPS} groups, ${CONTAINERS} containers, ${OTHER} other docs | ${migrateS.toFixed(1)} | ${revertS.toFixed(1)} | ${again.toFixed(1)} | ${purgeS.toFixed(1)} (${purged.docs_removed} docs removed) | ${(idle / 2 ** 20).toFixed(0)} → ${(peak / 2 ** 20).toFixed(0)} MiB |`,
);
console.log(`rows in SQL: ${rows.rows[0].c} containers, ${rows.rows[0].g} groups`);
console.log(
  `drain wait ${DRAIN_MS} ms; dark during the first migration, recorded / watched: huge org ${dark.huge.recorded.toFixed(2)} / ${dark.huge.watched.toFixed(2)} s, small org ${dark.small.recorded.toFixed(2)} / ${dark.small.watched.toFixed(2)} s`,
);
console.log(
  JSON.stringify({
    bench: 'huge-org',
    couchdb: stack.couch.version,
    groups: GROUPS,
    containers: CONTAINERS,
    other_docs: OTHER,
    drain_wait_ms: DRAIN_MS,
    migrate_s: migrateS,
    revert_s: revertS,
    again_s: again,
    purge_s: purgeS,
    dark_s: dark,
    worker_rss_mib: { idle: idle / 2 ** 20, peak: peak / 2 ** 20 },
  }),
);
worker.kill('SIGTERM');
await app.close();
await closeContext(ctx);
await stack.dropAll();
await services.stop();
process.exit(0);
