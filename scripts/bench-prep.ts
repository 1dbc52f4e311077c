// npm run bench:prep — the prep pass (runbook 2.5) over N generated orgs
// (100,000 by default): capture each as holding and pin it to CouchDB, through
// the fleet, beside the floor: one multi-row INSERT of the same rows plus one
// pipelined Redis write of the same flags. Prep and floor alternate A B A B.
//   BENCH_ORGS (100000)  BENCH_ROUNDS (3)
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { seedEstate } from '../dev/estate.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import * as prep from '../src/jobs/phase_2_migration_prep.js';
import { startRun } from '../src/runs/manager.js';
import { createLogger } from '../src/log.js';
import { orgFlagsKey } from '../src/darklaunch.js';
import { startFleet } from '../src/workers/fleet.js';
import { checkServicesOrExit, createStack } from './lib/stack.js';
import { median } from './lib/samplers.js';

const N = Number(process.env.BENCH_ORGS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

await checkServicesOrExit();
const stack = await createStack('benchprep');
const log = createLogger('silent', 'bench');
const ctx = createContext(stack.config, log);
await migrate(ctx.db);

console.log(`seeding ${N} orgs into ${stack.couch.accountDb} (${stack.couch.version}) ...`);
const t0 = Date.now();
const orgs = await seedEstate(
  stack.couch.url,
  Array.from({ length: N }, (_, i) => ({ name: `prep-${String(i).padStart(7, '0')}`, containers: 0, groups: 0, noDatabase: true })),
  { accountDb: stack.couch.accountDb },
);
await accountRefresh.refreshAccounts(ctx);
console.log(`seeded and snapshotted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

async function reset() {
  await ctx.db.query(`TRUNCATE org_migration_state`);
  await ctx.darklaunchRedis.flushdb();
  await ctx.queues[prep.type].obliterate({ force: true });
}

async function fleetPass(): Promise<number> {
  await reset();
  const fleet = startFleet(createContext(stack.config, log), { concurrency: 8, reconcileEveryMs: 60_000, phaseTickMs: 60_000 });
  const start = performance.now();
  const { run } = await startRun(ctx, prep.type, { count: 'all', concurrency: 4 });
  for (;;) {
    const { rows } = await ctx.db.query(`SELECT state, orgs_finished FROM mover.migration_runs WHERE id = $1`, [run.id]);
    if (rows[0].state === 'ready') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - start;
  await fleet.close();
  const { rows } = await ctx.db.query(`SELECT count(*)::int AS n FROM org_migration_state WHERE state = 'holding'`);
  const pinned = (await ctx.darklaunchRedis.keys('dl_org_*')).length;
  if (rows[0].n !== N || pinned !== N) throw new Error(`prep captured ${rows[0].n} and pinned ${pinned} of ${N}`);
  return ms;
}

async function floorPass(): Promise<number> {
  await reset();
  const start = performance.now();
  await ctx.db.query(
    `INSERT INTO org_migration_state (org_name, org_id, migration_type) SELECT n, g, 'phase_2_migration' FROM unnest($1::text[], $2::text[]) AS t(n, g)`,
    [orgs.map((o) => o.name), orgs.map((o) => o.guid)],
  );
  const pipeline = ctx.darklaunchRedis.pipeline();
  for (const o of orgs) pipeline.hset(orgFlagsKey(o.name), { couchdb_containers: 'true', couchdb_groups: 'true' });
  await pipeline.exec();
  return performance.now() - start;
}

const a: number[] = [];
const b: number[] = [];
const ratios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const x = await fleetPass();
  const y = await floorPass();
  a.push(x);
  b.push(y);
  ratios.push(x / y);
  console.log(`round ${r + 1}: prep ${(N / (x / 1000)).toFixed(0)} orgs/s, floor ${(N / (y / 1000)).toFixed(0)} orgs/s, prep/floor time ${(x / y).toFixed(2)}`);
}
console.log(`\n${N} orgs, ${ROUNDS} rounds (medians):`);
console.log(`  prep:  ${(N / (median(a) / 1000)).toFixed(0)} orgs/s (${(median(a) / 1000).toFixed(2)} s)`);
console.log(`  floor: ${(N / (median(b) / 1000)).toFixed(0)} orgs/s (${(median(b) / 1000).toFixed(2)} s)`);
console.log(`  prep/floor time ratio: ${median(ratios).toFixed(2)} (target <= 3)`);
await reset();
await closeContext(ctx);
await stack.dropAll();
process.exit(0);
