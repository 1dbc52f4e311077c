// npm run bench:million — the estate-wide passes at Internet scale
// (BENCHMARKS.md, `bench:million`), through real api and worker processes with every process's RSS
// sampled (peak printed):
//  1. the account refresh streams opscode_account (BENCH_ACCOUNT_ORGS orgs,
//     200,000, each with BENCH_JOINS_PER_ORG AuthJoins, 10) into a snapshot;
//  2. the prep pass (runbook 2.5) over BENCH_PREP_ORGS orgs (1,000,000), whose
//     snapshot is written straight into Postgres (PouchDB Server in memory
//     cannot hold a million-org opscode_account on this machine beside the
//     rest), through 3 worker processes: every org captured and pinned.
// PouchDB Server holds 2.2 million documents in memory only with a bigger
// heap than Node's default: run with NODE_OPTIONS=--max-old-space-size=16384
// (bench:scale does); mover's processes are started without it.
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import nano from 'nano';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { buildOrg } from '../dev/estate.js';
import { freePort } from '../dev/pouch-server.js';
import { startPrivateRedis } from '../dev/private-stores.js';
import { createLogger } from '../src/log.js';
import { spawnMover } from './lib/fleet.js';
import { sampleRss } from './lib/samplers.js';
import { checkServicesOrExit, createStack } from './lib/stack.js';

const ACCOUNT_ORGS = Number(process.env.BENCH_ACCOUNT_ORGS ?? 200_000);
const JOINS = Number(process.env.BENCH_JOINS_PER_ORG ?? 10);
const PREP_ORGS = Number(process.env.BENCH_PREP_ORGS ?? 1_000_000);
const WORKERS = 3;

await checkServicesOrExit();
// A private Redis: a million pins and the queues stay apart from anything else on the machine.
const redis = await startPrivateRedis();
const stack = await createStack('million');
const port = await freePort();
const config = { ...stack.config, port, redisUrl: redis.url, darklaunchRedisUrl: redis.url };
const ctx = createContext(config, createLogger('silent', 'bench-million'), { dbPoolSize: 4 });
await migrate(ctx.db);

// 1. opscode_account, written 5,000 documents a request, a chunk of orgs at a time (this process never holds it all).
let t = Date.now();
const account = nano(stack.couch.url);
await account.db.create(stack.couch.accountDb);
const accountDb = account.use(stack.couch.accountDb);
for (let i = 0; i < ACCOUNT_ORGS; i += 500) {
  const docs = Array.from(
    { length: Math.min(500, ACCOUNT_ORGS - i) },
    (_, k) =>
      buildOrg({ name: `acct-${String(i + k).padStart(7, '0')}`, containers: Math.ceil(JOINS / 2), groups: Math.floor(JOINS / 2), noDatabase: true })
        .accountDocs,
  ).flat();
  for (let j = 0; j < docs.length; j += 5000) await accountDb.bulk({ docs: docs.slice(j, j + 5000) });
}
const seededDocs = (await accountDb.info()).doc_count;
console.log(
  `${stack.couch.accountDb} (${stack.couch.version}): ${ACCOUNT_ORGS} orgs, ${ACCOUNT_ORGS * JOINS} AuthJoins (${seededDocs} documents) written in ${((Date.now() - t) / 1000).toFixed(0)} s`,
);

const children: Record<string, ChildProcess> = {};
for (let i = 1; i <= WORKERS; i++) children[`worker-${i}`] = spawnMover(config, 'workers/worker');
children.api = spawnMover(config, 'api/server', { PORT: String(port) });
const api = `http://127.0.0.1:${port}`;
const headers = { authorization: `Bearer ${config.apiToken}`, 'content-type': 'application/json' };
for (let i = 0; ; i++) {
  const ok = await fetch(`${api}/readyz`).then(
    (r) => r.ok,
    () => false,
  );
  if (ok) break;
  if (i > 120) throw new Error('api did not start');
  await sleep(500);
}
const [couchPid] = stack.couch.pids(); // the server's own process (none for a CouchDB on another machine)
const rss = sampleRss(() => ({ ...Object.fromEntries(Object.entries(children).map(([n, c]) => [n, c.pid ?? 0])), ...(couchPid ? { couchdb: couchPid } : {}) }));

t = Date.now();
const refresh = await fetch(`${api}/account/refresh`, { method: 'POST', headers, body: '{}' });
if (refresh.status !== 202) throw new Error(`account refresh answered ${refresh.status}: ${await refresh.text()}`);
let snap: { orgs?: number; authz_joins?: number } = {};
for (;;) {
  await sleep(1000);
  const r = await fetch(`${api}/account`, { headers });
  if (r.ok) snap = await r.json();
  if (snap.orgs === ACCOUNT_ORGS) break;
  const { rows: last } = await ctx.db.query(`SELECT state, error FROM mover.account_snapshots ORDER BY id DESC LIMIT 1`);
  if (last[0]?.state === 'failed') throw new Error(`account refresh failed: ${last[0].error}`);
  if (Date.now() - t > 60 * 60_000) throw new Error(`account refresh did not finish: ${JSON.stringify(snap)}`);
}
const refreshS = (Date.now() - t) / 1000;
const refreshPeaks = { ...rss.stop() };
console.log(`account refresh: ${snap.orgs} orgs, ${snap.authz_joins} AuthJoins in ${refreshS.toFixed(1)} s; peak RSS (MiB): ${fmt(refreshPeaks)}`);

// 2. A million-org snapshot, straight into Postgres, swapped in as the refresh would.
t = Date.now();
await ctx.db.query(`INSERT INTO mover.account_snapshots (state, finished_at, orgs) VALUES ('ready', now(), $1)`, [PREP_ORGS]);
await ctx.db.query(
  `INSERT INTO mover.account_orgs (snapshot_id, name, guid, precreated)
   SELECT (SELECT max(id) FROM mover.account_snapshots), 'mil-' || lpad(i::text, 7, '0'), lpad(to_hex(i), 32, '0'), false FROM generate_series(1, $1) AS i`,
  [PREP_ORGS],
);
await ctx.db.query(`UPDATE mover.account_snapshot_current SET snapshot_id = (SELECT max(id) FROM mover.account_snapshots)`);
await ctx.db.query(`DELETE FROM mover.account_orgs WHERE snapshot_id <> (SELECT snapshot_id FROM mover.account_snapshot_current)`);
await ctx.db.query('ANALYZE mover.account_orgs');
console.log(`snapshot of ${PREP_ORGS} orgs written in ${((Date.now() - t) / 1000).toFixed(1)} s`);

const prepRss = sampleRss(() => Object.fromEntries(Object.entries(children).map(([n, c]) => [n, c.pid ?? 0])));
t = Date.now();
const start = await fetch(`${api}/migrations/phase_2_migration_prep/start`, { method: 'POST', headers, body: JSON.stringify({ count: 'all' }) });
if (start.status !== 202) throw new Error(`prep start answered ${start.status}: ${await start.text()}`);
let status: { state?: string } = {};
for (;;) {
  await sleep(1000);
  status = await (await fetch(`${api}/migrations/phase_2_migration_prep/status`, { headers })).json();
  if (['completed', 'halted', 'failed'].includes(status.state ?? '')) break;
  if (Date.now() - t > 60 * 60_000) throw new Error(`prep did not finish: ${JSON.stringify(status)}`);
}
const prepS = (Date.now() - t) / 1000;
const prepPeaks = prepRss.stop();
const { rows } = await ctx.db.query(`SELECT count(*)::int AS n FROM org_migration_state WHERE migration_type = 'phase_2_migration' AND state = 'holding'`);
let pinned = 0;
let cursor = '0';
do {
  const [next, keys] = await ctx.darklaunchRedis.scan(cursor, 'MATCH', 'dl_org_mil-*', 'COUNT', 10_000);
  pinned += keys.length;
  cursor = next;
} while (cursor !== '0');
console.log(`prep: ${rows[0].n} of ${PREP_ORGS} orgs captured, ${pinned} pinned to CouchDB, in ${prepS.toFixed(1)} s; peak RSS (MiB): ${fmt(prepPeaks)}`);

console.log(`\n| pass | size | time | peak RSS, mover processes (MiB) |\n|---|---|---|---|`);
const mover = (p: Record<string, number>) => fmt(Object.fromEntries(Object.entries(p).filter(([n]) => n !== 'couchdb')));
console.log(
  `| account refresh | ${ACCOUNT_ORGS.toLocaleString('en')} orgs, ${(ACCOUNT_ORGS * JOINS).toLocaleString('en')} AuthJoins | ${refreshS.toFixed(1)} s | ${mover(refreshPeaks)} |`,
);
console.log(
  `| prep (3 workers) | ${PREP_ORGS.toLocaleString('en')} orgs (${rows[0].n.toLocaleString('en')} captured, ${pinned.toLocaleString('en')} pinned) | ${prepS.toFixed(1)} s | ${mover(prepPeaks)} |`,
);
console.log(
  JSON.stringify({
    bench: 'million',
    account_orgs: ACCOUNT_ORGS,
    authz_joins: snap.authz_joins,
    refresh_s: refreshS,
    refresh_rss_mib: refreshPeaks,
    prep_orgs: PREP_ORGS,
    captured: rows[0].n,
    pinned,
    prep_s: prepS,
    prep_rss_mib: prepPeaks,
  }),
);

function fmt(p: Record<string, number>) {
  return Object.entries(p)
    .map(([n, v]) => `${n} ${v.toFixed(0)}`)
    .join(', ');
}
for (const c of Object.values(children)) c.kill('SIGKILL');
await closeContext(ctx);
await stack.dropAll();
await redis.stop();
process.exit(0);
