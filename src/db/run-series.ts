// A run sample by sample (migrations/019_run_samples.sql): what the runbook
// page draws its charts from. Written by src/runs/series.ts every few
// seconds; read in buckets sized to the run's length, so a 20-second run and
// a 20-hour one both come back as at most MAX_POINTS points.
import type { Db, DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;

export interface RunSample {
  runId: string;
  finished: number;
  failed: number;
  inFlight: number;
  /** Orgs of the run dark now; null if the darklaunch Redis did not answer. */
  dark: number | null;
  darkP99Ms: number | null;
}

export async function recordSample(q: Q, s: RunSample): Promise<void> {
  await q.query(
    `INSERT INTO mover.run_samples (run_id, at, finished, failed, in_flight, dark, dark_p99_ms) VALUES ($1, now(), $2, $3, $4, $5, $6)
     ON CONFLICT DO NOTHING`,
    [s.runId, s.finished, s.failed, s.inFlight, s.dark, s.darkP99Ms],
  );
}

export interface SeriesPoint {
  /** The bucket's start. */
  at: string;
  /** Orgs finished in the bucket, per second. */
  orgs_per_s: number;
  finished: number;
  failed: number;
  in_flight: number;
  /** The most orgs dark at once seen in the bucket. */
  dark_max: number | null;
  dark_p99_ms: number | null;
}

export const MAX_POINTS = 240;
const BUCKETS_S = [4, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

/** The smallest bucket that draws a run of this length in at most MAX_POINTS points. */
export function bucketFor(seconds: number): number {
  return BUCKETS_S.find((b) => seconds / b <= MAX_POINTS) ?? Math.ceil(seconds / MAX_POINTS);
}

/** The run from its start to its end (or now), in buckets of `bucketS`; nothing after it ended. */
export async function runSeries(q: Q, runId: string, bucketS: number): Promise<SeriesPoint[]> {
  const { rows } = await q.query(
    `WITH b AS (
       SELECT floor(extract(epoch FROM s.at) / $2) * $2 AS t, max(s.finished) AS finished, max(s.failed) AS failed,
              max(s.in_flight) AS in_flight, max(s.dark) AS dark_max, max(s.dark_p99_ms) AS dark_p99_ms
       FROM mover.run_samples s JOIN mover.migration_runs r ON r.id = s.run_id
       WHERE s.run_id = $1 AND s.at <= coalesce(r.finished_at, now()) + make_interval(secs => $2)
       GROUP BY 1)
     SELECT t, finished, failed, in_flight, dark_max, dark_p99_ms, lag(finished, 1, 0) OVER (ORDER BY t) AS finished_before
     FROM b ORDER BY t`,
    [runId, bucketS],
  );
  return rows.map((r) => ({
    at: new Date(Number(r.t) * 1000).toISOString(),
    orgs_per_s: Math.round(((r.finished - r.finished_before) / bucketS) * 100) / 100,
    finished: r.finished,
    failed: r.failed,
    in_flight: r.in_flight,
    dark_max: r.dark_max,
    dark_p99_ms: r.dark_p99_ms,
  }));
}
