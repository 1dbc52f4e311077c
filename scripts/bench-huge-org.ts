// npm run bench:huge-org — one huge org end to end: BENCH_GROUPS (5,000)
// groups, BENCH_CONTAINERS (2,000) containers and BENCH_OTHER_DOCS (100,000)
// other documents (nodes) in its CouchDB database. A worker process (as the
// Procfile starts it, METRICS_PORT set) migrates it, the org is reverted and
// migrated again, then purged; the time of each and the worker's peak RSS
// (sampled from its own process_resident_memory_bytes every 100 ms) are
// printed. The api runs in this process. BENCH_COUCH: unset or pouchdb,
// PouchDB Server in memory; real, Apache CouchDB (scripts/lib/couch.ts).
import { buildApp } from '../src/api/app.js';
import { closeContext, createContext } from '../src/context.js';
import type { PhaseRow, StepRow } from '../src/db/phases.js';
import { migrate } from '../src/db/migrate.js';
import { seedEstate } from '../src/dev/estate.js';
import { freePort } from '../src/dev/pouch-server.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { purgeCompletedOrgs } from '../src/phases/purge.js';
import { describeCouch } from './lib/couch.js';
import { createStack, ensureServices } from './lib/stack.js';
import { spawnMover } from './lib/fleet.js';

const GROUPS = Number(process.env.BENCH_GROUPS ?? 5000);
const CONTAINERS = Number(process.env.BENCH_CONTAINERS ?? 2000);
const OTHER = Number(process.env.BENCH_OTHER_DOCS ?? 100_000);
const T = 'phase_2_migration';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const services = await ensureServices((s) => console.log(s));
const stack = await createStack('huge', 13);
const ctx = createContext(stack.config, createLogger('silent', 'bench-huge-org'));
await migrate(ctx.db);
let t = Date.now();
console.log(describeCouch(stack.couch));
const [org] = await seedEstate(stack.couch.url, [{ name: 'huge', groups: GROUPS, containers: CONTAINERS, otherDocs: OTHER }], { accountDb: stack.couch.accountDb });
console.log(`seeded ${GROUPS} groups, ${CONTAINERS} containers, ${OTHER} other documents in ${((Date.now() - t) / 1000).toFixed(1)} s`);
await accountRefresh.process(ctx);
const app = await buildApp(ctx);
const url = await app.listen({ host: '127.0.0.1', port: 0 });
const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${stack.config.apiToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  return res.json() as Promise<any>;
};
await api('PUT', '/settings/drain-wait', { ms: 0, acknowledgeRisk: true });

const metricsPort = await freePort();
const { config } = stack;
const worker = spawnMover(config, 'workers/worker', { LOG_LEVEL: 'silent', METRICS_PORT: String(metricsPort) });
let peak = 0;
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text(), () => '');
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
    const s = await api('GET', `/migrations/${type}/status`);
    if (s.state === 'ready' && s.runId) {
      if (s.orgs_completed !== 1 || s.objects_failed !== 0) throw new Error(`${type} ended with ${JSON.stringify(s)}`);
      return (Date.now() - t0) / 1000;
    }
    await sleep(100);
  }
}

await api('POST', `/migrations/${T}/orgs`, { orgs: ['huge'] });
await api('POST', `/migrations/${T}/ready`, {});
const migrateS = await runUntilEnd(T, { count: 'all', concurrency: 1 });
const revertS = await runUntilEnd('phase_2_revert', { orgs: ['huge'] });
const again = await runUntilEnd(T, { count: 'all', concurrency: 1 });
t = Date.now();
let step = { id: '4.1', detail: {} } as unknown as StepRow;
for (;;) {
  const r = await purgeCompletedOrgs(ctx, { n: 4, params: {} } as unknown as PhaseRow, step);
  step = { ...step, detail: r.detail ?? {} };
  if (r.state !== 'running') break;
}
const purgeS = (Date.now() - t) / 1000;
sampling = false;
await sampler;
const rows = await ctx.db.query(`SELECT (SELECT count(*) FROM containers WHERE org_id = $1)::int AS c, (SELECT count(*) FROM "groups" WHERE org_id = $1)::int AS g`, [org.guid]);
console.log(`\n${stack.couch.version}`);
console.log(`| org | migrate (s) | revert (s) | migrate again (s) | purge (s) | worker RSS idle → peak |\n|---|---|---|---|---|---|`);
console.log(
  `| ${GROUPS} groups, ${CONTAINERS} containers, ${OTHER} other docs | ${migrateS.toFixed(1)} | ${revertS.toFixed(1)} | ${again.toFixed(1)} | ${purgeS.toFixed(1)} (${JSON.stringify(step.detail.docs_removed)} docs removed) | ${(idle / 2 ** 20).toFixed(0)} → ${(peak / 2 ** 20).toFixed(0)} MiB |`,
);
console.log(`rows in SQL: ${rows.rows[0].c} containers, ${rows.rows[0].g} groups`);
worker.kill('SIGTERM');
await app.close();
await closeContext(ctx);
await stack.dropAll();
await services.stop();
process.exit(0);
