// Real api and worker processes (as the Procfile starts them) for the fault
// suites, and the run every fault is put through: orgs seeded, captured and
// readied, a run a quarter done when the fault strikes, and after it every org
// completed (rows exact, routed to SQL, up), none failed, no process exited.
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import type { Config } from '../../src/config.js';
import type { Context } from '../../src/context.js';
import { getOrgState } from '../../src/db/org-states.js';
import { getRun } from '../../src/db/runs.js';
import type { OrgSpec, SeededOrg } from '../../dev/estate.js';
import { processEnv } from '../../dev/processes.js';
import { startRun } from '../../src/runs/manager.js';
import { expectedRows, sqlRows } from './harness.js';
import { seedReady } from './seed-ready.js';
import { waitFor } from './wait.js';

const T = 'phase_2_migration';

export interface FleetProcesses {
  list: { name: string; child: ChildProcess; log: () => string }[];
  /** An api or worker process on `config`, its output kept (the last `keep` characters) for failure messages. */
  spawn(name: string, entry: 'src/workers/worker.ts' | 'src/api/server.ts', extra?: Record<string, string>): ChildProcess;
  /** Each process's last output, for a failure message. */
  logs(chars?: number): string;
  killAll(): void;
}

/** `keep`: how much of each process's output is kept (the last characters), for failure messages. */
export function fleetProcesses(config: () => Config, keep = 20_000): FleetProcesses {
  const list: FleetProcesses['list'] = [];
  const logs = (chars = 3000) => list.map((p) => `--- ${p.name}\n${p.log().slice(-chars)}`).join('\n');
  return {
    list,
    logs,
    spawn(name, entry, extra = {}) {
      const c = config();
      const env = processEnv(c, {
        WORKER_CONCURRENCY: '4',
        STORE_OUTAGE_GRACE_MS: String(c.storeOutageGraceMs),
        JOB_LOCK_MS: String(c.jobLockMs),
        LOG_LEVEL: 'warn',
        ...extra,
      });
      const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out = (out + d).slice(-keep)));
      child.stderr.on('data', (d) => (out = (out + d).slice(-keep)));
      list.push({ name, child, log: () => out });
      return child;
    },
    killAll() {
      for (const p of list) p.child.kill('SIGKILL');
    },
  };
}

/** waitFor, every 200 ms, its timeout naming what it waited for with the processes' output; a throw from fn (a store away) is retried. */
export function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, procs: FleetProcesses, ms = 60_000): Promise<T> {
  return waitFor(() => `${what}\n${procs.logs()}`, fn, ms, 200);
}

/** Seeds, captures and readies `n` orgs named `prefix-org-NNN`, starts a run, and returns once a quarter of them finished. */
export async function runUnderWay(
  ctx: Context,
  seed: (specs: OrgSpec[]) => Promise<SeededOrg[]>,
  procs: FleetProcesses,
  prefix: string,
  n: number,
): Promise<{ orgs: SeededOrg[]; runId: string }> {
  const orgs = await seedReady(
    { ctx, seed },
    Array.from({ length: n }, (_, i) => ({ name: `${prefix}-org-${String(i).padStart(3, '0')}` })),
  );
  const { run } = await startRun(ctx, T, { count: 'all', concurrency: 6 });
  await until('a quarter of the run done', async () => ((await getRun(ctx.db, run.id))?.orgs_finished ?? 0) >= n / 4, procs);
  return { orgs, runId: run.id };
}

/** Every org completed, exact, routed to SQL, up; the run ended with no failure; every process still running. */
export async function assertRunRodeThrough(ctx: Context, procs: FleetProcesses, orgs: SeededOrg[], runId: string): Promise<void> {
  const run = await until(
    'the run to end',
    async () => {
      const r = await getRun(ctx.db, runId);
      return r?.state === 'ready' ? r : null;
    },
    procs,
    120_000,
  );
  const states = await Promise.all(orgs.map(async (o) => `${o.name}:${(await getOrgState(ctx.db, T, o.name))?.state}`));
  expect(
    { finished: run.orgs_finished, failed: run.orgs_failed, skipped: run.orgs_skipped, breaker: run.breaker },
    `${states.join(' ')}\n${procs.logs(4000)}`,
  ).toEqual({
    finished: orgs.length,
    failed: 0,
    skipped: 0,
    breaker: 'closed',
  });
  for (const org of orgs) {
    expect((await getOrgState(ctx.db, T, org.name))?.state, org.name).toBe('completed');
    expect(await ctx.darklaunchRedis.hgetall(`dl_org_${org.name}`), org.name).toEqual({
      couchdb_containers: 'false',
      couchdb_groups: 'false',
      '503_mode': 'false',
    });
    expect(await sqlRows({ ctx }, org.guid), org.name).toEqual(expectedRows(org));
  }
  for (const p of procs.list) expect({ name: p.name, exit: p.child.exitCode, signal: p.child.signalCode }).toEqual({ name: p.name, exit: null, signal: null });
}
