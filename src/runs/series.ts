// The runs sample by sample, for the runbook page's charts (orgs per second,
// orgs dark, dark-time p99, failures): every few seconds one worker of the
// fleet (a chore, src/db/maintenance.ts) samples each run still going, and
// each that ended in the last two minutes, into mover.run_samples. Kept in
// Postgres, so a reload or another api replica draws the same charts.
import type { Context } from '../context.js';
import { claimChore } from '../db/maintenance.js';
import { recordSample } from '../db/run-series.js';
import { recentRuns } from '../db/runs.js';
import { cachedSettings } from '../db/settings.js';
import { darkNow } from './dark-now.js';
import { darkTimeOf } from './dark-time.js';

/** How often the fleet samples its runs (one worker each time). */
export const SAMPLE_EVERY_MS = 4000;

export async function sampleRuns(ctx: Context): Promise<void> {
  if (!(await claimChore(ctx.db, 'run-series', SAMPLE_EVERY_MS - 500))) return;
  for (const run of await recentRuns(ctx.db)) {
    const { inFlight, dark } = await darkNow(ctx, run.id);
    const darkTime = darkTimeOf(run.dark_hist, run.dark_max_ms, (await cachedSettings(ctx)).drainWaitMs);
    await recordSample(ctx.db, {
      runId: run.id,
      finished: run.orgs_finished,
      failed: run.orgs_failed,
      inFlight: inFlight.length,
      dark: dark === null ? null : dark.length,
      darkP99Ms: darkTime.p99_ms,
    });
  }
}
