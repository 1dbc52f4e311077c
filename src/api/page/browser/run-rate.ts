// A run's size and pace from its status, as both the CLI's progress line
// (src/cli/progress.ts) and the runbook page (this directory, run in the
// operator's browser) show them: one rule, so the two never disagree. Pure,
// no DOM and no Node, so both builds compile it (the CLI's with tsconfig.json,
// the page's with the tsconfig.json here).

/** The counts of a run's status (GET /migrations/:type/status) these read. */
export interface RunCounts {
  state: string;
  orgs_completed: number;
  objects_in_progress: number;
  /** A number, or "all" before the run has counted them. */
  objects_remaining: number | string;
  started_at?: string | null;
  finished_at?: string | null;
}

const OVER = ['completed', 'halted', 'failed', 'not_started'];
/** A run that is over (src/runs/run-state.ts): it works and halts no more. */
export const runOver = (status: Pick<RunCounts, 'state'>) => OVER.includes(status.state);

/** The orgs a run took, from its status: finished, in flight and not started yet. */
export const orgsInRun = (s: Pick<RunCounts, 'orgs_completed' | 'objects_in_progress' | 'objects_remaining'>) =>
  s.orgs_completed + s.objects_in_progress + (typeof s.objects_remaining === 'number' ? s.objects_remaining : 0);

/** Orgs/s over the whole run, from its own start (and end): what a rate shows before the samples span enough time, and once the run is over. */
export function runRate(status: Pick<RunCounts, 'started_at' | 'finished_at' | 'orgs_completed'>, now = Date.now()): number | null {
  if (!status.started_at) return null;
  const to = status.finished_at ? Date.parse(status.finished_at) : now;
  const s = (to - Date.parse(status.started_at)) / 1000;
  return s > 0 ? status.orgs_completed / s : null;
}

/** One look at a run: when, how many of its orgs had finished, and which run it was (when the looker follows more than one). */
export interface RateSample {
  at: number;
  done: number;
  run?: string | null;
}

/**
 * Records a sample and returns orgs/s across the samples of the last minute
 * (of the same run), once they span at least minSpanMs; null before that.
 * Older samples, and another run's, are dropped.
 */
export function recentRate(seen: RateSample[], sample: RateSample, minSpanMs: number): number | null {
  seen.push(sample);
  while (sample.at - seen[0].at > 60_000 || seen[0].run !== sample.run) seen.shift();
  const span = sample.at - seen[0].at;
  return span > 0 && span >= minSpanMs ? ((sample.done - seen[0].done) * 1000) / span : null;
}
