// npm run bench:migrate — migrates N generated orgs (12 containers + 5 groups
// each) through the fleet with sleep time 0, and times the floor beside it: a
// bare loop that reads the same documents from the same CouchDB server and
// inserts the same rows into the same Postgres with the same parallelism.
// Fleet and floor alternate (A B A B ...) so drift hits both alike.
//   BENCH_ORGS (5000)  BENCH_ROUNDS (3)  BENCH_CONCURRENCY (8)
import { closeContext, createContext, type Context } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { setSetting } from '../src/db/settings.js';
import { insertObjects, OBJECT_TABLES, type ObjectRow } from '../src/db/org-objects.js';
import * as tracker from '../src/db/state-tracker.js';
import { seedDarklaunchDefaults, seedEstate, type SeededOrg } from '../src/dev/estate.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { startRun } from '../src/runs/manager.js';
import { inTransaction } from '../src/stores/postgres.js';
import { startFleet } from '../src/workers/fleet.js';
import { checkServicesOrExit, createStack } from './lib/stack.js';

const N = Number(process.env.BENCH_ORGS ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const P = Number(process.env.BENCH_CONCURRENCY ?? 8);
const T = 'phase_2_migration';

await checkServicesOrExit();
const stack = await createStack('bench', 13);
const log = createLogger('silent', 'bench');
const ctx = createContext(stack.config, log, { dbPoolSize: P + 4 });
const workerCtx = createContext(stack.config, log, { dbPoolSize: 2 * P + 4 });
await migrate(ctx.db);
// Throughput of the copy itself: no drain wait (nothing writes to the bench estate).
await setSetting(ctx.db, 'drainWaitMs', 0);

console.log(`seeding ${N} orgs (12 containers + 5 groups each) into PouchDB Server ...`);
let t0 = Date.now();
const orgs = await seedEstate(stack.pouch.url, Array.from({ length: N }, (_, i) => ({ name: `bench-${String(i).padStart(6, '0')}` })));
await accountRefresh.process(ctx);
await tracker.insertOrgs(ctx.db, T, orgs.map((o) => ({ name: o.name, guid: o.guid })));
console.log(`seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// The floor writes to tables of the same shape, so its rows never meet the fleet's.
await ctx.db.query(`CREATE TABLE IF NOT EXISTS floor_containers (LIKE containers INCLUDING ALL); CREATE TABLE IF NOT EXISTS floor_groups (LIKE "groups" INCLUDING ALL)`);

async function resetForFleet() {
  await ctx.db.query(`TRUNCATE containers, "groups"`);
  await ctx.db.query(`UPDATE org_migration_state SET state = 'ready' WHERE migration_type = $1`, [T]);
  await ctx.db.query(`DELETE FROM mover.org_progress WHERE migration_type = $1`, [T]);
  await ctx.queues[T].obliterate({ force: true });
  await ctx.darklaunchRedis.flushdb();
  await seedDarklaunchDefaults(ctx.darklaunchRedis);
}

async function floorPass(): Promise<number> {
  await ctx.db.query(`TRUNCATE floor_containers, floor_groups`);
  const queue = [...orgs];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: P }, async () => {
      for (let org = queue.shift(); org; org = queue.shift()) await floorOne(org);
    }),
  );
  return performance.now() - start;
}

async function floorOne(org: SeededOrg) {
  const docs = await ctx.couch.readOrgObjects(org.guid);
  const authz = new Map(org.expected.map((e) => [e.id, e.authzId]));
  const now = new Date();
  const rows: Record<string, ObjectRow[]> = { containers: [], groups: [] };
  for (const d of docs) {
    const e = org.expected.find((x) => x.id === d._id);
    if (e) rows[e.table].push({ id: d._id, authz_id: authz.get(d._id)!, name: e.name, last_updated_by: String(d.requester_id), created_at: now, updated_at: now });
  }
  await inTransaction(ctx.db, async (c) => {
    for (const t of OBJECT_TABLES) await insertObjects(c, `floor_${t}`, org.guid, rows[t]);
  });
}

async function fleetPass(): Promise<number> {
  await resetForFleet();
  const fleet = startFleet(workerCtx, { concurrency: P, reconcileEveryMs: 60_000 });
  const start = performance.now();
  const { run } = await startRun(ctx, T, { count: 'all', concurrency: P });
  for (;;) {
    const { rows } = await ctx.db.query(`SELECT state, orgs_finished, orgs_failed FROM mover.migration_runs WHERE id = $1`, [run.id]);
    if (rows[0].state === 'ready') {
      if (rows[0].orgs_finished !== N || rows[0].orgs_failed !== 0) throw new Error(`fleet run ended with ${JSON.stringify(rows[0])}`);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - start;
  await fleet.close();
  const { rows } = await ctx.db.query(`SELECT (SELECT count(*) FROM containers)::int AS c, (SELECT count(*) FROM "groups")::int AS g`);
  if (rows[0].c !== N * 12 || rows[0].g !== N * 5) throw new Error(`fleet wrote ${rows[0].c} containers and ${rows[0].g} groups`);
  return ms;
}

// CPU seconds used so far by the other processes on the box (verbose mode): pouch, postgres, redis.
import { execSync } from 'node:child_process';
function otherCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  const tick = 100;
  for (const [name, pattern] of [['couch', 'pouchdb-server'], ['postgres', 'postgres'], ['redis', 'redis-server']]) {
    let total = 0;
    const pids = execSync(`pgrep -f ${pattern} || true`).toString().split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        const f = execSync(`cat /proc/${pid}/stat`).toString().split(') ')[1].split(' ');
        total += (Number(f[11]) + Number(f[12])) / tick;
      } catch { /* gone */ }
    }
    out[name] = total;
  }
  return out;
}
const diff = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, +(b[k] - a[k]).toFixed(2)]));
const fleetMs: number[] = [];
const floorMs: number[] = [];
const ratios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  let cpu = process.cpuUsage();
  let other = process.env.BENCH_VERBOSE ? otherCpu() : {};
  const a = process.env.BENCH_ONLY === 'floor' ? 1 : await fleetPass();
  const fleetCpu = process.cpuUsage(cpu);
  if (process.env.BENCH_VERBOSE) console.log('  fleet: cpu-s of other processes', diff(other, otherCpu()));
  cpu = process.cpuUsage();
  other = process.env.BENCH_VERBOSE ? otherCpu() : {};
  const b = process.env.BENCH_ONLY === 'fleet' ? 1 : await floorPass();
  const floorCpu = process.cpuUsage(cpu);
  if (process.env.BENCH_VERBOSE) console.log('  floor: cpu-s of other processes', diff(other, otherCpu()));
  if (process.env.BENCH_VERBOSE) console.log(`  cpu of this process: fleet ${((fleetCpu.user + fleetCpu.system) / 1000 / a).toFixed(2)} cores, floor ${((floorCpu.user + floorCpu.system) / 1000 / b).toFixed(2)} cores`);
  fleetMs.push(a);
  floorMs.push(b);
  ratios.push(a / b);
  console.log(`round ${r + 1}: fleet ${(N / (a / 1000)).toFixed(0)} orgs/s, floor ${(N / (b / 1000)).toFixed(0)} orgs/s, fleet/floor time ${(a / b).toFixed(2)}`);
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(`\n${N} orgs, parallelism ${P}, ${ROUNDS} rounds (medians):`);
console.log(`  fleet: ${(N / (median(fleetMs) / 1000)).toFixed(0)} orgs/s (${(median(fleetMs) / 1000).toFixed(2)} s)`);
console.log(`  floor: ${(N / (median(floorMs) / 1000)).toFixed(0)} orgs/s (${(median(floorMs) / 1000).toFixed(2)} s)`);
console.log(`  fleet/floor time ratio: ${median(ratios).toFixed(2)} (target <= 1.5)`);

await closeContext(workerCtx);
await closeContext(ctx);
await stack.dropAll();
