// What a benchmark samples while it runs: each process's resident memory
// (from /proc, so any process, ours or a store's) and the Postgres
// connections in use. Peaks are what the benchmarks print.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';

/** Resident set of a process in MiB, or 0 if it is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Samples the named processes' RSS every `everyMs` until stopped; peak per name. */
export function sampleRss(pids: () => Record<string, number>, everyMs = 250): { peaks: Record<string, number>; stop(): Record<string, number> } {
  const peaks: Record<string, number> = {};
  const take = () => {
    for (const [name, pid] of Object.entries(pids())) peaks[name] = Math.max(peaks[name] ?? 0, rssMiB(pid));
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    peaks,
    stop() {
      clearInterval(t);
      take();
      return peaks;
    },
  };
}

/** Samples the connections open to the database (other than this sampler's own) every `everyMs`; the peak. */
export function sampleConnections(db: pg.Pool, everyMs = 250): { stop(): Promise<number> } {
  let peak = 0;
  let busy = false;
  const sample = async () => {
    if (busy) return;
    busy = true;
    try {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
      peak = Math.max(peak, rows[0].n);
    } catch (err) {
      console.error(`connection sample failed: ${(err as Error).message}`);
    } finally {
      busy = false;
    }
  };
  // A timer does not wait on its callback's promise; sample reports its own failure.
  const t = setInterval(() => void sample(), everyMs);
  return {
    async stop() {
      clearInterval(t);
      return peak;
    },
  };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

/** The p-th percentile (0–100), nearest rank. */
export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};

/** CPU seconds (user + system) a process has used so far, or 0 if it is gone. */
export function cpuSeconds(pid: number, opts: { reaped?: boolean } = {}): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime + stime, and with `reaped` the CPU of children it has waited for (cutime + cstime): what a
    // postmaster's exited backends spent. Clock ticks of 1/100 s on Linux.
    return (Number(fields[11]) + Number(fields[12]) + (opts.reaped ? Number(fields[13]) + Number(fields[14]) : 0)) / 100;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

const pgrep = (...args: string[]): number[] => spawnSync('pgrep', args, { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);

/** A postmaster's command line, as pgrep -f takes it: the server itself, not the `runuser … postgres -D` that started a private one (its child would count twice). */
export const POSTMASTER = '^\\S*/bin/postgres -D';

/**
 * CPU seconds a server on this machine has used so far, found by its command
 * line (`pattern`, as pgrep -f takes it): the process, the children it has
 * reaped (a postmaster's exited backends) and those still running.
 */
export function serverCpuSeconds(pattern: string): number {
  return pgrep('-f', pattern).reduce((n, root) => n + cpuSeconds(root, { reaped: true }) + pgrep('-P', String(root)).reduce((m, c) => m + cpuSeconds(c), 0), 0);
}
