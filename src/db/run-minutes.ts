// A run minute by minute (migrations/016_run_minutes.sql): the samples the
// runbook page draws its charts from. Written by src/runs/series.ts.
import type { Db, DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;

export interface MinuteSample {
  runId: string;
  finished: number;
  failed: number;
  inFlight: number;
  /** Orgs of the run dark now; null if the darklaunch Redis did not answer. */
  dark: number | null;
  darkP99Ms: number | null;
}

/** This minute's row of the run: the latest counters, and the most orgs dark at once seen in it. */
export async function recordMinute(q: Q, s: MinuteSample): Promise<void> {
  await q.query(
    `INSERT INTO mover.run_minutes AS m (run_id, minute, sampled_at, finished, failed, in_flight, dark_max, dark_p99_ms)
     VALUES ($1, date_trunc('minute', now()), now(), $2, $3, $4, $5, $6)
     ON CONFLICT (run_id, minute) DO UPDATE SET sampled_at = now(), finished = EXCLUDED.finished, failed = EXCLUDED.failed,
       in_flight = EXCLUDED.in_flight, dark_max = GREATEST(m.dark_max, EXCLUDED.dark_max), dark_p99_ms = EXCLUDED.dark_p99_ms`,
    [s.runId, s.finished, s.failed, s.inFlight, s.dark, s.darkP99Ms],
  );
}

export interface RunMinute {
  minute: string;
  /** Orgs finished in the minute, per second (over the part of the minute the run was going). */
  orgs_per_s: number;
  finished: number;
  failed: number;
  in_flight: number;
  dark_max: number | null;
  dark_p99_ms: number | null;
}

/** The run's minutes, oldest first (the last `limit`), with each minute's rate of finished orgs. */
export async function runMinutes(q: Q, runId: string, limit = 1440): Promise<RunMinute[]> {
  const { rows } = await q.query(
    `SELECT minute, sampled_at, finished, failed, in_flight, dark_max, dark_p99_ms,
            lag(finished, 1, 0) OVER w AS finished_before, lag(sampled_at) OVER w AS sampled_before, r.started_at
     FROM mover.run_minutes m JOIN mover.migration_runs r ON r.id = m.run_id
     WHERE m.run_id = $1 WINDOW w AS (ORDER BY minute) ORDER BY minute DESC LIMIT $2`,
    [runId, limit],
  );
  return rows.reverse().map((r) => {
    const from = new Date(r.sampled_before ?? r.started_at).getTime();
    const seconds = Math.max(1, (new Date(r.sampled_at).getTime() - from) / 1000);
    return {
      minute: new Date(r.minute).toISOString(),
      orgs_per_s: Math.round(((r.finished - r.finished_before) / seconds) * 100) / 100,
      finished: r.finished,
      failed: r.failed,
      in_flight: r.in_flight,
      dark_max: r.dark_max,
      dark_p99_ms: r.dark_p99_ms,
    };
  });
}
