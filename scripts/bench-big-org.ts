// npm run bench:big-org — reading one huge org's containers and groups, on a
// CouchDB with Mango (PouchDB Server as it is) and on one without (the 1.x
// proxy of the test suite): time and peak memory of a fresh process doing
// only that read, for an org database of BENCH_DOCS documents (100,000 by
// default; nodes of ~2 KB each plus 12 containers and 5 groups) beside one of
// a tenth of that size. Memory that stays flat between the two sizes is
// bounded. A third reader loads the whole database in one _all_docs call: what
// an unbounded read would cost.
//   BENCH_DOCS (100000)  BENCH_ROUNDS (3)
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import nano from 'nano';
import { Couch } from '../src/stores/couch.js';
import { createLogger } from '../src/log.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { startPouchServer } from '../dev/pouch-server.js';
import { startCouch1Proxy } from '../test/support/couch1-proxy.js';
import { median } from './lib/samplers.js';

const hex = () => randomBytes(16).toString('hex');

// Child mode: one read, then its figures as one JSON line.
if (process.argv[2] === '--read') {
  const [, , , how, url, guid] = process.argv;
  const start = performance.now();
  let docs: number;
  if (how === 'whole') {
    const res = await nano(url).use(`chef_${guid}`).list({ include_docs: true });
    docs = res.rows.filter((r) => (r.doc as unknown as Record<string, unknown>)['couchrest-type'] !== 'Chef::Node').length;
  } else {
    docs = (await new Couch(url, { graceMs: 0, log: createLogger('warn', 'bench-big-org') }).readOrgObjects(guid)).length;
  }
  const ms = performance.now() - start;
  console.log(JSON.stringify({ docs, ms, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

const N = Number(process.env.BENCH_DOCS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const pouch = await startPouchServer();
const proxy = await startCouch1Proxy(pouch.url);
// mover asks opscode_account whether the server has Mango.
await nano(pouch.url).db.create('opscode_account');

async function seedOrg(docs: number): Promise<string> {
  const guid = hex();
  const server = nano(pouch.url);
  await server.db.create(`chef_${guid}`);
  const db = server.use(`chef_${guid}`);
  const objects = [
    ...Array.from({ length: 12 }, (_, i) => ({ _id: hex(), 'couchrest-type': TYPES.container, containername: `c${i}`, requester_id: hex() })),
    ...Array.from({ length: 5 }, (_, i) => ({ _id: hex(), 'couchrest-type': TYPES.group, groupname: `g${i}`, requester_id: hex() })),
  ];
  await db.bulk({ docs: objects });
  const attrs = 'x'.repeat(2000);
  for (let done = 0; done < docs; done += 5000) {
    const batch = Array.from({ length: Math.min(5000, docs - done) }, (_, i) => ({
      _id: hex(),
      'couchrest-type': 'Chef::Node',
      name: `node-${done + i}`,
      automatic: { attrs },
    }));
    await db.bulk({ docs: batch });
  }
  return guid;
}

console.log(`seeding org databases of ${N} and ${N / 10} documents ...`);
const t0 = Date.now();
const big = await seedOrg(N);
const small = await seedOrg(N / 10);
console.log(`seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

type Figures = { docs: number; ms: number; maxRssMiB: number };
// Asynchronously: the 1.x proxy answers from this process while the child reads.
const read = async (how: string, url: string, guid: string): Promise<Figures> => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/bench-big-org.ts', '--read', how, url, guid], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
};

const cases = [
  { label: 'Mango (2.x/3.x)', how: 'mover', url: pouch.url },
  { label: 'no Mango (1.x)', how: 'mover', url: proxy.url },
  { label: 'whole database at once', how: 'whole', url: pouch.url },
];
const results: Record<string, Figures[]> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const c of cases) {
    for (const [size, guid] of [
      [N, big],
      [N / 10, small],
    ] as const) {
      const f = await read(c.how, c.url, guid);
      if (f.docs !== 17) throw new Error(`${c.label} read ${f.docs} containers and groups, not 17`);
      (results[`${c.label}|${size}`] ??= []).push(f);
    }
  }
}
console.log(`\n| reader | org database | read time (median) | peak RSS of the process (median) |\n|---|---|---|---|`);
for (const c of cases) {
  for (const size of [N, N / 10]) {
    const fs = results[`${c.label}|${size}`];
    console.log(
      `| ${c.label} | ${size.toLocaleString('en')} docs | ${(median(fs.map((f) => f.ms)) / 1000).toFixed(2)} s | ${median(fs.map((f) => f.maxRssMiB)).toFixed(0)} MiB |`,
    );
  }
}
await proxy.close();
await pouch.stop();
