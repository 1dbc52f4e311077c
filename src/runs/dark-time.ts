// A run's dark times, from the histogram the statements that finish its orgs
// keep (migrations/013_dark_time.sql: 100 ms buckets, the last one 60 s and
// more) and the longest one: what run status, the CLI and the runbook page
// show. Pure.

/**
 * Past the drain wait, an org is dark only for its catch-up copy and the
 * switch: a few hundred ms, more on a busy machine. Orgs dark (at p99) more
 * than this, and more than a fifth of the drain wait, past it are held dark
 * by the fleet itself (waiting for CPU, connections or a store): worth
 * acting on. A second on a 5 s drain wait: a fleet that keeps orgs dark 7 s
 * for 5 (bench:pacing at concurrency 450 on two cores, BENCHMARKS.md) says so.
 */
export const SATURATION_MS = 1000;
const BUCKET_MS = 100;
const LAST_BUCKET = 600;

export interface DarkTime {
  /** Orgs of the run whose dark time was measured. */
  orgs: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  /** p99 past the drain wait: what the fleet adds to the wait an org must be dark for. */
  past_drain_p99_ms: number | null;
  /** The fleet keeps orgs dark well past the drain wait (saturationThresholdMs): lower the concurrency, or add CPU. */
  saturated: boolean;
  /** Why saturated, in words, with what to do; null when not. */
  saturation: string | null;
}

/** The q-quantile, as the upper edge of its bucket (never past the longest seen). */
function quantile(hist: number[], total: number, q: number, maxMs: number | null): number | null {
  if (!total) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b] ?? 0;
    // The last bucket has no upper edge (60 s and more): the longest stands for it.
    if (seen >= rank) return b === LAST_BUCKET ? maxMs : Math.min((b + 1) * BUCKET_MS, maxMs ?? Infinity);
  }
  return maxMs;
}

/** How far past the drain wait p99 may go before the run is saturated: SATURATION_MS, or a fifth of the drain wait when longer. */
export const saturationThresholdMs = (drainWaitMs: number) => Math.max(SATURATION_MS, drainWaitMs / 5);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function darkTimeOf(hist: number[] | null | undefined, maxMs: number | null, drainWaitMs: number): DarkTime {
  const h = hist ?? [];
  const orgs = h.reduce((n, c) => n + (c ?? 0), 0);
  const p99 = quantile(h, orgs, 0.99, maxMs);
  const past = p99 === null ? null : Math.max(0, p99 - drainWaitMs);
  const threshold = saturationThresholdMs(drainWaitMs);
  const saturated = past !== null && past > threshold;
  return {
    orgs,
    p50_ms: quantile(h, orgs, 0.5, maxMs),
    p99_ms: p99,
    max_ms: orgs ? maxMs : null,
    past_drain_p99_ms: past,
    saturated,
    saturation: saturated
      ? `orgs stay dark ${seconds(past)} past the ${seconds(drainWaitMs)} drain wait at p99 (more than ${seconds(threshold)}): the fleet holds them dark waiting for CPU, connections or a store; lower the concurrency or add workers`
      : null,
  };
}
