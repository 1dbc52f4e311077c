// What the benchmarks that run mover as processes share: a config for
// private stores, starting an api or worker process as the Procfile does, and
// waiting for a run to end.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../src/config.js';
import { getRun, type RunRow } from '../../src/db/runs.js';
import { freePort } from '../../dev/pouch-server.js';
import { processEnv, stopAtExit } from '../../dev/processes.js';
import type { Db } from '../../src/stores/postgres.js';

/** A config over the given stores (one Redis for queues and darklaunch), with a fresh token and api port. */
export async function benchConfig(
  stores: { databaseUrl: string; redisUrl: string; couchdbUrl: string },
  queuePrefix: string,
  workerConcurrency = 8,
): Promise<Config> {
  return {
    ...stores,
    darklaunchRedisUrl: stores.redisUrl,
    apiToken: randomBytes(8).toString('hex'),
    port: await freePort(),
    logLevel: 'silent',
    queuePrefix,
    workerConcurrency,
    dryRun: false,
    storeOutageGraceMs: 60_000,
    jobLockMs: 30_000,
  };
}

/**
 * How a benchmark starts an api or worker process: as the Procfile does
 * (`node dist/...`, built by bench:scale, which sets BENCH_DIST=1), or from
 * the sources through tsx, whose loader adds some 40 MiB to each process.
 */
export function moverArgs(entry: 'api/server' | 'workers/worker'): string[] {
  // BENCH_NODE_FLAGS: V8 flags for the workers, to try one side by side (e.g. `--max-semi-space-size=2`, `--perf-basic-prof` for perf).
  const flags = entry === 'workers/worker' ? (process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []) : [];
  return [...flags, ...(process.env.BENCH_DIST === '1' ? [`dist/src/${entry}.js`] : ['--import', 'tsx', `src/${entry}.ts`])];
}

/**
 * An api or worker process on `config`; its errors go to this process's
 * stderr, and with BENCH_WORKER_LOGS=1 its log lines (warnings and worse) to
 * this process's stdout: a bench that sees an org read twice can tell why.
 */
export function spawnMover(config: Config, entry: 'api/server' | 'workers/worker', env: Record<string, string> = {}, nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, ...moverArgs(entry)], {
    env: processEnv(config, { LOG_LEVEL: 'warn', ...env }),
    stdio: ['ignore', process.env.BENCH_WORKER_LOGS === '1' ? 'inherit' : 'ignore', 'inherit'],
  });
  // A bench that throws part-way takes its processes with it; one that stops them first is not in the way.
  const forget = stopAtExit(() => child.kill('SIGKILL'));
  child.once('exit', forget);
  return child;
}

/** SIGTERM, then SIGKILL if the process has not exited within `ms`. */
export async function stopChild(c: ChildProcess, ms: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}

/** Polls the run until it is over (state 'ready'); throws past `timeoutMs`. */
export async function waitForRunEnd(db: Db, runId: string, timeoutMs: number, everyMs = 200): Promise<RunRow> {
  const started = Date.now();
  for (;;) {
    const run = await getRun(db, runId);
    if (run?.state === 'ready') return run;
    if (Date.now() - started > timeoutMs) throw new Error(`run ${runId} did not end in ${timeoutMs / 1000} s: ${JSON.stringify(run)}`);
    await sleep(everyMs);
  }
}
