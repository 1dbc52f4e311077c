// npm run bench:reads — what an operator's or a dashboard's reads cost with a
// million orgs in the state tracker (BENCH_ORGS) and a run of 80% of them in
// progress: p50 and p99 of BENCH_CALLS (40) calls of each read, through the
// HTTP API of one api process (this one). The rows are written straight into
// Postgres (generate_series): a realistic mix of states, org_progress rows
// for the run, a few hundred failed, 150 in flight. Twice it measures the
// reads while the fleet's maintenance runs beside them, as one process of a
// fleet runs it: on the first start against a Chef database whose million
// rows mover never wrote (the state mirror's resync adds a row for each), and
// later with 100,000 states edited by hand (the resync, the counters' check,
// and a VACUUM ANALYZE of the mirror).
import { buildApp } from '../src/api/app.js';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { repairStateCounts, RESYNC_BATCH, resyncStateMirror } from '../src/db/maintenance.js';
import { createLogger } from '../src/log.js';
import { createStack, ensureServices } from './lib/stack.js';

const N = Number(process.env.BENCH_ORGS ?? 1_000_000);
const CALLS = Number(process.env.BENCH_CALLS ?? 40);
// The resync's batch (src/db/maintenance.ts, RESYNC_BATCH); a batch of the whole table is how the resync ran before.
const RESYNC = { batch: Number(process.env.BENCH_RESYNC_BATCH ?? RESYNC_BATCH) };
const T = 'phase_2_migration';

const services = await ensureServices((s) => console.log(s));
const stack = await createStack('reads');
const ctx = createContext(stack.config, createLogger('silent', 'bench-reads'));
await migrate(ctx.db);

let t = Date.now();
const inRun = Math.floor(N * 0.8);
// A run of 80% of the orgs: the first 40% of it finished (a few hundred failed), 150 in flight, the rest ready.
const {
  rows: [run],
} = await ctx.db.query(
  `INSERT INTO mover.migration_runs (migration_type, state, requested, enqueued, concurrency, orgs_finished, orgs_failed) VALUES ($1, 'working', NULL, $2, 150, $3, 300) RETURNING id`,
  [T, inRun, Math.floor(inRun * 0.4)],
);
await ctx.db.query(
  `INSERT INTO org_migration_state (org_name, org_id, migration_type, state, fail_location, migration_start, migration_end)
   SELECT 'org-' || lpad(i::text, 7, '0'), lpad(to_hex(i), 32, '0'), $1,
     (CASE WHEN i > $3 THEN 'holding' WHEN i <= 300 THEN 'failed' WHEN i <= $4 THEN 'completed' WHEN i <= $4 + 150 THEN 'started' ELSE 'ready' END)::org_state,
     CASE WHEN i <= 300 THEN 'migrate' END,
     CASE WHEN i <= $4 + 150 THEN now() - interval '1 hour' END,
     CASE WHEN i <= $4 THEN now() - interval '30 minutes' END
   FROM generate_series(1, $2) AS i`,
  [T, N, inRun, Math.floor(inRun * 0.4)],
);
console.log(`${N} orgs written into Chef's table in ${((Date.now() - t) / 1000).toFixed(1)} s`);
// A Chef database that has been up for years has its statistics.
await ctx.db.query('ANALYZE org_migration_state');

const app = await buildApp(ctx);
const url = await app.listen({ host: '127.0.0.1', port: 0 });
const headers = { authorization: `Bearer ${stack.config.apiToken}` };
const reads: [string, string][] = [
  ['run status', `/migrations/${T}/status`],
  ['phases', '/phases'],
  ['one phase', '/phases/3'],
  ['one org', '/orgs/org-0500000'],
  ['metrics', '/metrics'],
  ['audit, first page', '/audit?limit=100'],
  ['org list, first page', `/migrations/${T}/orgs?limit=100`],
  ['org list, `state=failed`', `/migrations/${T}/orgs?state=failed&limit=100`],
  ['org list, `state=started`', `/migrations/${T}/orgs?state=started&limit=100`],
  ['org list, `state=ready`, a later page', `/migrations/${T}/orgs?state=ready&limit=100&cursor=org-0600000`],
  ['org list, a later page', `/migrations/${T}/orgs?limit=100&cursor=org-0900000`],
  ['failures by step', `/migrations/${T}/failures`],
  ['account', '/account'],
];
async function timed(path: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url + path, { headers });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return performance.now() - t0;
}
const q = (ms: number[], p: number) => [...ms].sort((a, b) => a - b)[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)];

/** Every read in turn, over and over, while `work` runs (each read warmed up first); one row per read. */
async function readsDuring(title: string, work: () => Promise<string>) {
  for (const [, path] of reads) await timed(path);
  const ms = new Map<string, number[]>(reads.map(([name]) => [name, []]));
  let running = true;
  const t0 = Date.now();
  const done = work().finally(() => (running = false));
  // One org read with a name that differs each time, as an operator looking at many orgs does.
  let i = 0;
  while (running) {
    for (const [name, path] of reads)
      ms.get(name)!.push(await timed(name === 'one org' ? `/orgs/org-${String(1 + ((i++ * 7919) % N)).padStart(7, '0')}` : path));
  }
  const what = await done;
  console.log(`\n${title}: ${what}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`| read | calls | p50 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|---|`);
  for (const [name, list] of ms)
    console.log(`| ${name} | ${list.length} | ${q(list, 0.5).toFixed(1)} | ${q(list, 0.99).toFixed(1)} | ${Math.max(...list).toFixed(1)} |`);
}

await readsDuring('reads on the first start, while the maintenance mirrors the million rows', async () => {
  const mirrored = await resyncStateMirror(ctx.db, RESYNC);
  const drifted = await repairStateCounts(ctx.db);
  return `resync (batches of ${RESYNC.batch}) mirrored ${mirrored} orgs, the counters' check found ${drifted} rows to fix`;
});

// The run: its orgs' progress rows (the mirror made them) say so.
await ctx.db.query(
  `UPDATE mover.org_progress p SET run_id = $2, in_flight = i > $3 AND i <= $3 + 150, fail_kind = CASE WHEN i <= 300 THEN 'data' END, rows_in_sql = i <= $3
   FROM generate_series(1, $4) AS i WHERE p.migration_type = $1 AND p.org_id = lpad(to_hex(i), 32, '0')`,
  [T, run.id, Math.floor(inRun * 0.4), inRun],
);
t = Date.now();
const again = await resyncStateMirror(ctx.db);
console.log(`a resync pass with nothing to fix (${again}): ${((Date.now() - t) / 1000).toFixed(1)} s`);
t = Date.now();
const drifted = await repairStateCounts(ctx.db);
console.log(`the counters' check against the mirror (${drifted} rows drifted): ${((Date.now() - t) / 1000).toFixed(1)} s`);
await ctx.db.query(
  `INSERT INTO mover.audit_log (actor, action, detail) SELECT 'bench', 'orgs.ready', jsonb_build_object('n', i) FROM generate_series(1, 10000) AS i`,
);
await ctx.db.query('ANALYZE');

console.log(`\n| read | first call (ms) | p50 (ms) | p99 (ms) |\n|---|---|---|---|`);
for (const [name, path] of reads) {
  // The first call of a route also compiles its reply serializer: shown apart, not among the calls measured.
  t = performance.now();
  await (await fetch(url + path, { headers })).arrayBuffer();
  const first = (performance.now() - t).toFixed(1);
  const ms: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    t = performance.now();
    const res = await fetch(url + path, { headers });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`${path}: ${res.status}`);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)].toFixed(1);
  console.log(`| ${name} | ${first} | ${q(0.5)} | ${q(0.99)} |`);
}

await readsDuring('reads while 100,000 states edited by hand are mirrored, the counters checked and the mirror vacuumed', async () => {
  await ctx.db.query(
    `UPDATE org_migration_state SET state = 'holding' WHERE migration_type = $1 AND state = 'ready' AND org_id <= lpad(to_hex($2::int), 32, '0')`,
    [T, Math.floor(inRun * 0.4) + 150 + 100_000],
  );
  const mirrored = await resyncStateMirror(ctx.db, RESYNC);
  const drifted = await repairStateCounts(ctx.db);
  await ctx.db.query('VACUUM ANALYZE mover.org_progress');
  return `resync fixed ${mirrored} orgs, the counters' check ${drifted} rows, then VACUUM ANALYZE`;
});
await app.close();
await closeContext(ctx);
await stack.dropAll();
await services.stop();
process.exit(0);
