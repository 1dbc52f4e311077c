// npm run bench:migrate — migrates N generated orgs (12 containers + 5 groups
// each) through real worker processes (BENCH_WORKERS, 2, as the Procfile
// starts them) with sleep time and drain wait 0, and times two floors beside
// it: bare loops that read the same documents from the same CouchDB server,
// one with the fleet's own query (Mango _find here) and one with the
// fastest read the server offers for a whole small database (_all_docs with
// the documents), and insert the same rows into the same Postgres with the
// same parallelism. A third loop, the protocol, makes the fleet's own store
// calls for each org without its machinery (see protocolPass), which splits
// the fleet's cost into what the protocol costs and what the machinery adds.
// Fleet and loops alternate, each round started by the next (A B C D, B C D A, ...), so drift and the server's first-pass cost hit all alike. It also counts the round trips one org costs the fleet:
// Postgres statements, darklaunch Redis commands and CouchDB requests from
// the workers' own counters (mover_store_round_trips_total) and this
// process's (it starts the run), and BullMQ's Redis commands from the Redis
// server's command count; and every CouchDB request by what it is
// (mover_couchdb_requests_total{op}: the read, _changes, probes, the refresh,
// ...), the fleet's beside each loop's, with the CouchDB server's CPU per
// org in each round (a local CouchDB's too: scripts/lib/couch.ts).
//   BENCH_ORGS (5000)  BENCH_ROUNDS (3)  BENCH_WARMUP (1 unmeasured round first, the fleet's pass once per worker process)  BENCH_CONCURRENCY (8)  BENCH_WORKERS (2)  BENCH_PASSES (all: fleet,fleet query,_all_docs,protocol)
//   BENCH_COUCHDB_URL: unset, PouchDB Server in memory; a real CouchDB's URL, credentials in it (scripts/lib/couch.ts).
//   BENCH_CPU_PROF=<dir>: the workers write V8 CPU profiles there as they exit.
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { setSetting } from '../src/db/settings.js';
import { insertObjects } from '../src/db/org-objects.js';
import { OBJECT_TABLES, type ObjectRow } from '../src/migration/types.js';
import * as runs from '../src/db/runs.js';
import { migration } from '../src/jobs/phase_2_migration.js';
import type { OrgDelivery } from '../src/frame/org-job.js';
import { holdOrg, fencedOrg } from '../src/frame/held-org.js';
import type { OrgLease } from '../src/frame/org-lease.js';
import * as tracker from '../src/db/state-tracker.js';
import { seedDarklaunchDefaults, seedEstate, type SeededOrg } from '../dev/estate.js';
import { freePort } from '../dev/pouch-server.js';
import * as accountRefresh from '../src/jobs/account_refresh.js';
import { createLogger } from '../src/log.js';
import { startRun } from '../src/runs/manager.js';
import { isOrgObject, orgDatabaseName, type CouchDoc } from '../src/stores/couch-docs.js';
import { inTransaction } from '../src/stores/postgres.js';
import { spawnMover, stopChild } from './lib/fleet.js';
import { cpuSeconds, median, POSTMASTER, serverCpuSeconds } from './lib/samplers.js';
import { describeCouch } from './lib/couch.js';
import { couchTable, ownTrips, sumTrips, tripsSpent, waitForWorkers, workerTrips, type Trips } from './lib/round-trips.js';
import { checkServicesOrExit, createStack } from './lib/stack.js';

const N = Number(process.env.BENCH_ORGS ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const P = Number(process.env.BENCH_CONCURRENCY ?? 8);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const T = 'phase_2_migration';
/** BENCH_PASSES=fleet,protocol: only those passes (a quicker look at fleet / protocol). */
const ONLY = process.env.BENCH_PASSES?.split(',').map((x) => x.trim());

await checkServicesOrExit();
const stack = await createStack('bench');
const log = createLogger('silent', 'bench');
const ctx = createContext(stack.config, log, { dbPoolSize: P + 4 });
await migrate(ctx.db);
// Throughput of the copy itself: no drain wait (nothing writes to the bench estate).
await setSetting(ctx.db, 'drainWaitMs', 0);

console.log(describeCouch(stack.couch));
console.log(`seeding ${N} orgs (12 containers + 5 groups each) into ${stack.couch.version} ...`);
const t0 = Date.now();
const orgs = await seedEstate(
  stack.couch.url,
  Array.from({ length: N }, (_, i) => ({ name: `bench-${String(i).padStart(6, '0')}` })),
  { accountDb: stack.couch.accountDb },
);
await accountRefresh.refreshAccounts(ctx);
await tracker.insertOrgs(
  ctx.db,
  T,
  orgs.map((o) => ({ name: o.name, guid: o.guid })),
);
console.log(`seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// The floor writes to tables of the same shape, so its rows never meet the fleet's.
await ctx.db.query(
  `CREATE TABLE IF NOT EXISTS floor_containers (LIKE containers INCLUDING ALL); CREATE TABLE IF NOT EXISTS floor_groups (LIKE "groups" INCLUDING ALL)`,
);

async function resetForFleet() {
  await ctx.db.query(`TRUNCATE containers, "groups"`);
  await ctx.db.query(`UPDATE org_migration_state SET state = 'ready' WHERE migration_type = $1`, [T]);
  await ctx.db.query(`DELETE FROM mover.org_progress WHERE migration_type = $1`, [T]);
  await ctx.queues[T].obliterate({ force: true });
  await ctx.darklaunchRedis.flushdb();
  await seedDarklaunchDefaults(ctx.darklaunchRedis);
}

type Read = (org: SeededOrg) => Promise<CouchDoc[]>;
/** The fleet's own query for an org's containers and groups (Mango where the server has it). */
const readLikeFleet: Read = (org) => ctx.couch.readOrgObjects(org.guid);
/** The whole org database in one request, filtered here: the fastest read of a small database. */
const readAllDocs: Read = async (org) => {
  const db = ctx.couch.server.use<Record<string, unknown>>(orgDatabaseName(org.guid));
  const res = await ctx.couch.call('org_read', () => db.list({ include_docs: true }), 'floor read');
  return res.rows.map((r) => r.doc as unknown as CouchDoc).filter((d) => d && isOrgObject(d));
};

async function floorPass(read: Read): Promise<number> {
  await ctx.db.query(`TRUNCATE floor_containers, floor_groups`);
  const queue = [...orgs];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: P }, async () => {
      for (let org = queue.shift(); org; org = queue.shift()) await floorOne(org, read);
    }),
  );
  return performance.now() - start;
}

async function floorOne(org: SeededOrg, read: Read) {
  const docs = await read(org);
  const authz = new Map(org.expected.map((e) => [e.id, e.authzId]));
  const now = new Date();
  const rows: Record<string, ObjectRow[]> = { containers: [], groups: [] };
  for (const d of docs) {
    const e = org.expected.find((x) => x.id === d._id);
    if (e)
      rows[e.table].push({ id: d._id, authz_id: authz.get(d._id)!, name: e.name, last_updated_by: String(d.requester_id), created_at: now, updated_at: now });
  }
  await inTransaction(ctx.db, async (c) => {
    for (const t of OBJECT_TABLES) await insertObjects(c, `floor_${t}`, org.guid, rows[t]);
  });
}

/**
 * The protocol floor: the fleet's own store calls for one org, in its order
 * (the migration's preflight, lease and claim, steps and completion: routing
 * read, 503 on, the copy with its seq, the AuthJoin look-up, the write, the
 * seq at check_writes, the checkpoint, the switch), by a bare loop with the same parallelism and none of the
 * fleet's machinery (BullMQ, the frame, logs, metrics). Fleet / protocol is
 * what the machinery costs; protocol / floor is what the protocol costs.
 * Its run is of a type of its own, so no worker acts on it; its orgs are
 * leased while in flight, so no reconciler does.
 */
async function protocolPass(): Promise<number> {
  await resetForFleet();
  const run = await runs.createRun(ctx.db, 'bench-protocol', null, N, P);
  if (!run) throw new Error('a bench-protocol run is still active');
  await tracker.markInRun(
    ctx.db,
    T,
    run.id,
    orgs.map((o) => ({ name: o.name, guid: o.guid })),
  );
  const queue = [...orgs];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: P }, async () => {
      for (let org = queue.shift(); org; org = queue.shift()) await protocolOne(org, run.id);
    }),
  );
  const ms = performance.now() - start;
  await runs.endRun(ctx.db, run.id);
  const { rows } = await ctx.db.query(`SELECT count(*)::int AS n FROM org_migration_state WHERE migration_type = $1 AND state = 'completed'`, [T]);
  if (rows[0].n !== N) throw new Error(`protocol pass completed ${rows[0].n} orgs`);
  return ms;
}

/** One org through the migration's own preflight, start, steps (checkpoints recorded) and completion: the frame's calls without the frame. */
async function protocolOne(seeded: SeededOrg, runId: string) {
  const leaseToken = `bench-protocol:${seeded.guid}`;
  const org: OrgDelivery = { type: T, orgType: T, runId, orgName: seeded.name, orgId: seeded.guid, log };
  await migration.preflight?.(ctx, org);
  const ask = { firstStep: migration.steps[0].name, from: 'ready' as const, refused: false, guard: migration.claimGuard?.name };
  const started = await tracker.leaseAndClaim(ctx.db, { type: T, orgId: org.orgId, runId }, org.orgName, leaseToken, 60_000, ask);
  if (!started.leased || !started.claim.claimed) throw new Error(`protocol pass could not claim ${org.orgName}`);
  // Held as a delivery holds it (its writes fenced, its flags' fence raised), on a lease no keeper renews: 60 s outlasts an org here.
  holdOrg(ctx, org, { token: leaseToken, epoch: started.epoch } as OrgLease, 0);
  for (const [i, step] of migration.steps.entries()) {
    if (step.checkpoint && i > 0) await tracker.setStep(ctx.db, fencedOrg(org), step.name);
    await step.run(ctx, org);
  }
  await tracker.completeOrg(ctx.db, fencedOrg(org));
}

// The workers, as the Procfile starts them, each serving its metrics.
const metricsPorts: number[] = [];
const children: ChildProcess[] = [];
for (let i = 0; i < WORKERS; i++) {
  const port = await freePort();
  metricsPorts.push(port);
  children.push(
    spawnMover(
      stack.config,
      'workers/worker',
      { WORKER_CONCURRENCY: String(Math.ceil(P / WORKERS)), METRICS_PORT: String(port) },
      process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [],
    ),
  );
}

/**
 * Script calls and blocking waits on the shared Redis (BullMQ's and the darklaunch fences'),
 * from the server's per-command counts (the commands a script runs inside
 * Redis are not round trips and are left out).
 */
async function redisCommands(): Promise<{ trips: number }> {
  const info = await ctx.queueRedis.info('commandstats');
  const calls = (cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { trips: calls('evalsha') + calls('eval') + calls('bzpopmin') + calls('evalsha_ro') };
}
await waitForWorkers(metricsPorts);

/** CPU seconds used so far by each group of processes on the box: where a pass's time goes. */
function cpuByProcess(): Record<string, number> {
  return {
    workers: children.reduce((n, c) => n + cpuSeconds(c.pid ?? 0), 0),
    bench: cpuSeconds(process.pid),
    // The server and its children (CouchDB's couchjs); those that exited are in the first one's reaped-children time.
    couchdb: couchCpu(stack.couch.pids()),
    // Every postmaster with its backends, those that exited mid-pass in its reaped-children time.
    postgres: serverCpuSeconds(POSTMASTER),
    redis: serverCpuSeconds('^redis-server'),
  };
}
function couchCpu([root, ...children]: number[]): number {
  return root ? cpuSeconds(root, { reaped: true }) + children.reduce((n, p) => n + cpuSeconds(p), 0) : 0;
}
const cpuSpent = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));

/** The fleet's round trips so far: its workers', and this process's own (it starts the run, as the api would). */
const fleetTrips = async () => sumTrips([await workerTrips(metricsPorts), ownTrips()]);

/** The bench's own look at the run, uncounted. */
const poller = new pg.Client({ connectionString: stack.config.databaseUrl });
await poller.connect();
/**
 * Script calls and blocking waits on the shared Redis per org, each pass's
 * last: the fleet's are BullMQ's and the darklaunch fences', the protocol
 * loop's the same fences alone; BullMQ's is the difference.
 */
let fleetScripts = NaN;
let protocolScripts = NaN;

async function fleetPass(): Promise<{ ms: number; perOrg: Trips }> {
  await resetForFleet();
  const before = await fleetTrips();
  const redisBefore = await redisCommands();
  const start = performance.now();
  const { run } = await startRun(ctx, T, { count: 'all', concurrency: P });
  for (;;) {
    // On a client of its own: a poll is not the fleet's round trip (the pool counts every statement).
    const { rows } = await poller.query(`SELECT state, orgs_finished, orgs_failed FROM mover.migration_runs WHERE id = $1`, [run.id]);
    if (rows[0].state === 'ready') {
      if (rows[0].orgs_finished !== N || rows[0].orgs_failed !== 0) throw new Error(`fleet run ended with ${JSON.stringify(rows[0])}`);
      break;
    }
    await sleep(20);
  }
  const ms = performance.now() - start;
  // The polling above is this process's own (one command a poll is not on Redis); the workers' counts are theirs alone.
  const redisAfter = await redisCommands();
  const after = await fleetTrips();
  const perOrg = tripsSpent(before, after, N);
  fleetScripts = (redisAfter.trips - redisBefore.trips) / N;
  const { rows } = await ctx.db.query(`SELECT (SELECT count(*) FROM containers)::int AS c, (SELECT count(*) FROM "groups")::int AS g`);
  if (rows[0].c !== N * 12 || rows[0].g !== N * 5) throw new Error(`fleet wrote ${rows[0].c} containers and ${rows[0].g} groups`);
  return { ms, perOrg };
}

const fleetMs: number[] = [];
const mangoMs: number[] = [];
const allDocsMs: number[] = [];
const protocolMs: number[] = [];
const ratios: number[] = [];
/** fleet / protocol loop in each round: the machine's speed drifts between rounds, so a round's own ratio is the side-by-side one. */
const machineryRatios: number[] = [];
let perOrg: Trips = {};
const floorTrips: Record<string, Trips> = {};
const cpu: Record<string, Record<string, number>> = {};
/** The CouchDB server's CPU ms per org in each round, by pass: one round's figure is noisy on a shared machine. */
const couchCpuRounds: Record<string, number[]> = {};
/** Every process group's CPU in each round, by pass: the medians are what the summary prints. */
const cpuRounds: Record<string, Record<string, number>[]> = {};
const keepCouchCpu = (name: string, spent: Record<string, number>) => {
  (couchCpuRounds[name] ??= []).push((spent.couchdb * 1000) / N);
  (cpuRounds[name] ??= []).push(spent);
};
const floorRun = async (name: string, pass: () => Promise<number>) => {
  const before = ownTrips();
  const scripts0 = await redisCommands();
  const cpu0 = cpuByProcess();
  const ms = await pass();
  cpu[`floor (${name})`] = cpuSpent(cpu0, cpuByProcess());
  keepCouchCpu(name, cpu[`floor (${name})`]);
  floorTrips[name] = tripsSpent(before, ownTrips(), N);
  if (name === 'protocol') protocolScripts = ((await redisCommands()).trips - scripts0.trips) / N;
  return ms;
};
/**
 * A round's passes, each starting the round in turn (A B C D, B C D A, ...):
 * the pass that comes first after the seeding costs the CouchDB server more
 * (PouchDB Server: a fifth to a half more CPU per request, whichever pass it
 * is, and a warm-up read of every database does not take it away), so no pass
 * may always be the one that pays it.
 */
const passes = (
  [
    [
      'fleet',
      async () => {
        const cpu0 = cpuByProcess();
        const a = await fleetPass();
        cpu.fleet = cpuSpent(cpu0, cpuByProcess());
        keepCouchCpu('fleet', cpu.fleet);
        perOrg = a.perOrg;
        return a.ms;
      },
    ],
    ['fleet query', () => floorRun('fleet query', () => floorPass(readLikeFleet))],
    ['_all_docs', () => floorRun('_all_docs', () => floorPass(readAllDocs))],
    ['protocol', () => floorRun('protocol', protocolPass)],
  ] satisfies [string, () => Promise<number>][]
).filter(([name]) => !ONLY || ONLY.includes(name));
/**
 * Every pass, unmeasured, before the rounds: the worker processes start
 * fresh, and V8 spends each one's first thousand orgs or so compiling and
 * running code not yet optimized (by perf, after a warm-up pass of 1,000 orgs
 * shared by two workers: 3 ms an org more than the loop's process, in
 * TurboFan and in inline-cache stubs), where the loops run in this one
 * process. So the fleet's pass is run once for each worker process: each has
 * then taken as many orgs as this process took in the protocol loop's one
 * pass. A migration of tens of thousands of orgs runs warm; so is it
 * measured. What a cold start costs is printed beside it.
 */
let coldFleet: Record<string, number> | undefined;
for (let w = 0; w < WARMUP; w++)
  for (const [name, pass] of passes)
    for (let i = 0; i < (name === 'fleet' ? WORKERS : 1); i++) {
      await pass();
      if (name === 'fleet') coldFleet ??= cpuRounds.fleet[0];
    }
for (const k of Object.keys(cpuRounds)) delete cpuRounds[k];
for (const k of Object.keys(couchCpuRounds)) delete couchCpuRounds[k];
for (let r = 0; r < ROUNDS; r++) {
  const ms: Record<string, number> = {};
  for (let i = 0; i < passes.length; i++) {
    const [name, pass] = passes[(r + i) % passes.length];
    ms[name] = await pass();
  }
  const [a, b, c, d] = [ms.fleet, ms['fleet query'] ?? NaN, ms._all_docs ?? NaN, ms.protocol ?? NaN];
  fleetMs.push(a);
  mangoMs.push(b);
  allDocsMs.push(c);
  protocolMs.push(d);
  ratios.push(a / Math.min(b, c));
  machineryRatios.push(a / d);
  const rate = (x: number) => (N / (x / 1000)).toFixed(0);
  console.log(
    `round ${r + 1}: fleet ${rate(a)} orgs/s, floor (fleet query) ${rate(b)} orgs/s, floor (_all_docs) ${rate(c)} orgs/s, protocol ${rate(d)} orgs/s, fleet/fastest floor ${(a / Math.min(b, c)).toFixed(2)}, fleet/protocol ${(a / d).toFixed(2)}`,
  );
}
const fmt = (o: Record<string, number>) =>
  Object.entries(o)
    .filter(([k]) => !k.startsWith('couchdb.'))
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');
console.log(`\n${N} orgs, ${WORKERS} worker processes, concurrency ${P}, ${ROUNDS} rounds (medians), ${stack.couch.version}:`);
console.log(`  fleet: ${(N / (median(fleetMs) / 1000)).toFixed(0)} orgs/s (${(median(fleetMs) / 1000).toFixed(2)} s)`);
console.log(`  floor, fleet's query: ${(N / (median(mangoMs) / 1000)).toFixed(0)} orgs/s (${(median(mangoMs) / 1000).toFixed(2)} s)`);
console.log(`  floor, _all_docs: ${(N / (median(allDocsMs) / 1000)).toFixed(0)} orgs/s (${(median(allDocsMs) / 1000).toFixed(2)} s)`);
console.log(
  `  protocol (the fleet's round trips in a bare loop): ${(N / (median(protocolMs) / 1000)).toFixed(0)} orgs/s (${(median(protocolMs) / 1000).toFixed(2)} s)`,
);
console.log(`  fleet/fastest floor time ratio: ${median(ratios).toFixed(2)} (target <= 1.5)`);
console.log(
  `  of which the protocol (protocol/fastest floor): ${(median(protocolMs) / Math.min(median(mangoMs), median(allDocsMs))).toFixed(2)}, and the fleet's machinery (fleet/protocol): ${(median(fleetMs) / median(protocolMs)).toFixed(2)}`,
);
console.log(`  fleet/protocol, each round's own: median ${median(machineryRatios).toFixed(2)} (rounds ${machineryRatios.map((x) => x.toFixed(2)).join(', ')})`);
perOrg.bullmq_redis = fleetScripts - protocolScripts;
console.log(`  round trips per org, fleet: ${fmt(perOrg)}`);
for (const [name, t] of Object.entries(floorTrips)) console.log(`  round trips per org, floor (${name}): ${fmt(t)}`);
console.log(`  CouchDB requests by op (last round; every request mover sent, the fleet's workers' and its starter's):`);
const couchPasses = { fleet: { perOrg, orgs: N }, ...Object.fromEntries(Object.entries(floorTrips).map(([k, t]) => [k, { perOrg: t, orgs: N }])) };
for (const line of couchTable(couchPasses)) console.log(line);
for (const [name, ms] of Object.entries(couchCpuRounds)) {
  const requests = couchPasses[name as keyof typeof couchPasses]?.perOrg.couchdb ?? 0;
  console.log(
    `  CouchDB server CPU ms per org, ${name}: ${median(ms).toFixed(2)} (rounds ${ms.map((x) => x.toFixed(2)).join(', ')}), ${(median(ms) / requests).toFixed(2)} a request`,
  );
}
for (const [name, rounds] of Object.entries(cpuRounds)) {
  const per = Object.fromEntries(Object.keys(rounds[0]).map((k) => [k, (median(rounds.map((r) => r[k])) * 1000) / N]));
  const all = (median(rounds.map((r) => Object.values(r).reduce((a, b) => a + b, 0))) * 1000) / N;
  console.log(`  CPU ms per org, ${name} (medians of ${rounds.length} rounds): ${fmt(per)}, all ${all.toFixed(2)}`);
}
if (coldFleet) {
  const per = Object.fromEntries(Object.entries(coldFleet).map(([k, v]) => [k, (v * 1000) / N]));
  console.log(`  CPU ms per org, fleet cold (its first warm-up pass, worker processes fresh): ${fmt(per)}`);
}
console.log(
  JSON.stringify({
    bench: 'migrate',
    couchdb: stack.couch.version,
    orgs: N,
    workers: WORKERS,
    concurrency: P,
    fleet_ms: median(fleetMs),
    floor_query_ms: median(mangoMs),
    floor_all_docs_ms: median(allDocsMs),
    protocol_ms: median(protocolMs),
    ratio: median(ratios),
    machinery_ratio: median(machineryRatios),
    round_trips_per_org: perOrg,
    floor_round_trips_per_org: floorTrips,
    cpu_s_last_round: cpu,
  }),
);

// Stopped as an operator stops them: a worker writes its CPU profile (BENCH_CPU_PROF) as it exits.
await Promise.all(children.map((c) => stopChild(c, 10_000)));
await poller.end();
await closeContext(ctx);
await stack.dropAll();
process.exit(0);
