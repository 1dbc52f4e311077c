// npm run bench:scale — the at-scale figures of BENCHMARKS.md in one go, one benchmark after
// another (never two at once: they share the machine's two cores), each
// started as `npm run bench:<name>` with the sizes printed here, mover's
// processes run from the build as the Procfile runs them. Each benchmark
// prints its own table; the end repeats what each took.
//   1 operator reads        bench:reads     1,000,000 orgs, a run of 800,000
//   2 million-org passes    bench:million   account refresh 200,000 orgs / 2,000,000 AuthJoins; prep 1,000,000 orgs
//   3 huge org              bench:huge-org  5,000 groups, 2,000 containers, 100,000 other documents
//   4 Redis Cluster         bench:cluster   1,000 orgs through a 3-master cluster, then a paced run
//   6 production pacing     bench:pacing    1,200 orgs, concurrency 150, 3 workers, drain wait 5 s
// BENCH_SCALE_ONLY=reads,pacing runs only those.
import { spawnSync } from 'node:child_process';

const benches: { name: string; item: string; env: Record<string, string> }[] = [
  { name: 'reads', item: '1 operator reads', env: { BENCH_ORGS: '1000000', BENCH_CALLS: '40' } },
  {
    name: 'million',
    item: '2 million-org passes',
    // PouchDB Server needs more than Node's default heap to hold 2.2 million documents in memory.
    env: { BENCH_ACCOUNT_ORGS: '200000', BENCH_JOINS_PER_ORG: '10', BENCH_PREP_ORGS: '1000000', NODE_OPTIONS: '--max-old-space-size=16384' },
  },
  { name: 'huge-org', item: '3 huge org', env: { BENCH_GROUPS: '5000', BENCH_CONTAINERS: '2000', BENCH_OTHER_DOCS: '100000' } },
  { name: 'cluster', item: '4 Redis Cluster', env: { BENCH_ORGS: '1000', BENCH_CONCURRENCY: '24' } },
  { name: 'pacing', item: '6 production pacing', env: { BENCH_ORGS: '1200', BENCH_CONCURRENCY: '150' } },
];
const only = process.env.BENCH_SCALE_ONLY?.split(',');

const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const took: string[] = [];
let failed = 0;
for (const b of benches) {
  if (only && !only.includes(b.name)) continue;
  console.log(
    `\n## item ${b.item}: npm run bench:${b.name}  (${Object.entries(b.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')})\n`,
  );
  const t0 = Date.now();
  const r = spawnSync('npm', ['run', `bench:${b.name}`], { stdio: 'inherit', env: { ...process.env, ...b.env, BENCH_DIST: '1' } });
  const s = ((Date.now() - t0) / 1000).toFixed(0);
  if (r.status !== 0) failed++;
  took.push(`item ${b.item}: bench:${b.name} ${r.status === 0 ? 'done' : `FAILED (exit ${r.status})`} in ${s} s`);
}
console.log(`\n${took.join('\n')}`);
process.exit(failed ? 1 : 0);
