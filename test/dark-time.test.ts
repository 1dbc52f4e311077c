// A run's dark times from its histogram (src/runs/dark-time.ts): 100 ms
// buckets, the last one 60 s and more, quantiles read as the upper edge of
// their bucket and never past the longest seen.
import { describe, expect, it } from 'vitest';
import { darkTimeOf, saturationThresholdMs, SATURATION_MS } from '../src/runs/dark-time.js';

/** A histogram of 601 buckets with these dark times in it. */
function hist(...ms: number[]): number[] {
  const h = new Array(601).fill(0);
  for (const m of ms) h[Math.min(Math.floor(m / 100), 600)]++;
  return h;
}

describe('dark time of a run', () => {
  it('is empty before any org finished', () => {
    expect(darkTimeOf(hist(), null, 5000)).toEqual({
      orgs: 0,
      p50_ms: null,
      p99_ms: null,
      max_ms: null,
      past_drain_p99_ms: null,
      saturated: false,
      saturation: null,
    });
    expect(darkTimeOf(undefined, null, 5000).orgs).toBe(0);
  });

  it('reads p50 and p99 as bucket edges, capped by the longest', () => {
    const times = [...Array(98).fill(5020), 5260, 5480];
    expect(darkTimeOf(hist(...times), 5480, 5000)).toEqual({
      orgs: 100,
      p50_ms: 5100,
      p99_ms: 5300,
      max_ms: 5480,
      past_drain_p99_ms: 300,
      saturated: false,
      saturation: null,
    });
  });

  it('says the fleet is saturated, and why, when p99 is past the drain wait by more than SATURATION_MS and a fifth of the drain wait', () => {
    const slow = darkTimeOf(hist(...Array(50).fill(5050), ...Array(50).fill(6750)), 6780, 5000);
    expect(slow).toMatchObject({ p50_ms: 5100, p99_ms: 6780, past_drain_p99_ms: 1780, saturated: true });
    expect(slow.saturation).toBe(
      'orgs stay dark 1.8 s past the 5.0 s drain wait at p99 (more than 1.0 s): the fleet holds them dark waiting for CPU, connections or a store; lower the concurrency or add workers',
    );
    expect(saturationThresholdMs(5000)).toBe(1000);
    expect(saturationThresholdMs(60_000)).toBe(12_000);
    expect(darkTimeOf(hist(5950), 5950, 5000)).toMatchObject({ past_drain_p99_ms: 950, saturated: false, saturation: null });
    // A healthy run on a busy machine with a short drain wait (the demo's 200 ms): a second of catch-up and switch is not saturation.
    expect(darkTimeOf(hist(...Array(100).fill(1150)), 1190, 200)).toMatchObject({ past_drain_p99_ms: 990, saturated: false });
    expect(saturationThresholdMs(200)).toBe(SATURATION_MS);
  });

  it('keeps an org dark for a minute or more in the last bucket, and reports the longest as it was', () => {
    expect(darkTimeOf(hist(5000, 95_000), 95_000, 5000)).toMatchObject({ orgs: 2, p99_ms: 95_000, max_ms: 95_000, saturated: true });
  });

  it('counts an org that was never made to wait (drain wait 0) from zero', () => {
    expect(darkTimeOf(hist(12, 40, 90), 90, 0)).toMatchObject({ orgs: 3, p50_ms: 90, p99_ms: 90, past_drain_p99_ms: 90, saturated: false });
  });
});
