// Random pauses of mover's own processes, for the pause fault test and
// bench:faults (docs/architecture.md, "Fencing"): SIGSTOP a worker or the api
// for a while, then SIGCONT, as a GC pause, a frozen VM or CPU throttling
// would, while a run goes on; and a watch of every org's 503_mode that says,
// afterwards, how long an org stayed dark once the last pause that could
// explain it had ended.
import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { orgFlagsKey } from '../src/chef-routing.js';

/** A small seeded generator (mulberry32), so a failing chaos run can be told again by its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Pause {
  name: string;
  from: number;
  to: number;
}

/**
 * Every `gapMs` or so, pauses a process chosen at random among those
 * `targets` gives that are not paused already, for between `minMs` and
 * `maxMs`.
 * stop() resumes every process it paused.
 */
export class PauseChaos {
  readonly pauses: Pause[] = [];
  private running = false;
  private loop?: Promise<void>;
  private readonly stopped = new Set<ChildProcess>();

  constructor(
    private readonly targets: () => { name: string; child: ChildProcess }[],
    private readonly opts: {
      minMs: number;
      maxMs: number;
      gapMs: number;
      random: () => number;
      /** Every `every`th pause lasts at least `minMs` (past the job lock, say), so a run surely has some. */
      long?: { every: number; minMs: number };
    },
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      const inFlight: Promise<void>[] = [];
      while (this.running) {
        const free = this.targets().filter((t) => t.child.exitCode === null && !this.stopped.has(t.child));
        if (free.length) inFlight.push(this.pauseOne(free[Math.floor(this.opts.random() * free.length)]));
        await sleep(this.opts.gapMs * (0.5 + this.opts.random()));
      }
      await Promise.all(inFlight);
    })();
  }

  private made = 0;

  private async pauseOne(t: { name: string; child: ChildProcess }): Promise<void> {
    const long = this.opts.long && ++this.made % this.opts.long.every === 1;
    const min = long ? this.opts.long!.minMs : this.opts.minMs;
    const ms = min + this.opts.random() * (this.opts.maxMs - min);
    const from = Date.now();
    this.stopped.add(t.child);
    t.child.kill('SIGSTOP');
    // Resumed early when the chaos stops.
    for (let waited = 0; waited < ms && this.running; waited += 50) await sleep(Math.min(50, ms - waited));
    t.child.kill('SIGCONT');
    this.stopped.delete(t.child);
    this.pauses.push({ name: t.name, from, to: Date.now() });
  }

  /** Stops pausing and resumes every process still paused. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    for (const c of this.stopped) c.kill('SIGCONT');
  }
}

/** Samples every org's own 503_mode every `everyMs`: each org's dark intervals. */
export class DarkWatch {
  readonly intervals = new Map<string, { from: number; to: number }[]>();
  private readonly since = new Map<string, number>();
  private running = false;
  private loop?: Promise<void>;

  constructor(
    private readonly redis: Redis,
    private readonly orgs: string[],
    private readonly everyMs = 100,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const replies = (await this.redis.pipeline(this.orgs.map((o) => ['hget', orgFlagsKey(o), '503_mode'])).exec()) ?? [];
        const now = Date.now();
        this.orgs.forEach((org, i) => {
          const down = replies[i]?.[1] === 'true';
          const since = this.since.get(org);
          if (down && since === undefined) this.since.set(org, now);
          if (!down && since !== undefined) {
            this.intervals.set(org, [...(this.intervals.get(org) ?? []), { from: since, to: now }]);
            this.since.delete(org);
          }
        });
        await sleep(this.everyMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Orgs dark now (still dark when the watch stopped). */
  get darkNow(): string[] {
    return [...this.since.keys()];
  }

  /**
   * Of the orgs a pause caught dark (a dark interval that some pause of any
   * process overlapped), the longest one stayed dark after the last such
   * pause had ended: the interval's end minus the later of its start and the
   * end of the last pause that began before its end. An org no pause
   * touched is dark for its own reasons (its drain, its stores), not
   * counted here.
   */
  worstAfterPauses(pauses: Pause[]): { org: string; ms: number; from: number; to: number } | null {
    let worst: { org: string; ms: number; from: number; to: number } | null = null;
    for (const [org, list] of this.intervals) {
      for (const { from, to } of list) {
        if (!pauses.some((p) => p.from < to && p.to > from)) continue;
        const lastEnd = Math.max(from, ...pauses.filter((p) => p.from < to).map((p) => Math.min(p.to, to)));
        const ms = to - lastEnd;
        if (!worst || ms > worst.ms) worst = { org, ms, from, to };
      }
    }
    return worst;
  }
}
