// The API's replies as the runbook page reads them: only the fields it
// shows. Written out here because the routes' schemas, which the CLI takes
// its reply types from (src/cli/replies.ts), sit in Node modules this
// browser build does not compile; test/runbook-page-replies.test.ts checks,
// at `npm run typecheck`, that each route's reply fits these, so a field the
// API renames or drops fails the typecheck, not the page.
import type { RunCounts } from './run-rate.js';

/** GET /migrations/:type/status */
export interface RunStatus extends RunCounts {
  run_id: string | null;
  stop_reason: string | null;
  objects_failed: number;
  orgs_dark: number | null;
  concurrency?: number;
  dark?: { orgs: number; p50_ms: number | null; p99_ms: number | null; max_ms: number | null; saturated: boolean; saturation: string | null };
  breaker?: { state: string; reason: string | null };
  guard?: {
    budget_p99_ms: number | null;
    measured_p99_ms: number | null;
    source: string | null;
    set_concurrency: number;
    effective_concurrency: number;
    reason: string | null;
    couchdb_open_dbs?: string | null;
  };
}

/** GET /migrations/:type/runs */
export interface RunList {
  runs: { run_id: string; state: string; orgs_finished: number; orgs_in_run: number; started_at: string }[];
}

export interface FailedOrg {
  org_name: string;
  step: string | null;
  kind: string;
  reason: string | null;
  failed_at: string;
}
/** GET /migrations/:type/failures */
export interface Failures {
  run_id: string | null;
  by_step: Record<string, number>;
  orgs: FailedOrg[];
  next_cursor: string | null;
}

export interface SeriesPoint {
  at: string;
  orgs_per_s: number;
  dark_max: number | null;
  dark_p99_ms: number | null;
}
/** GET /migrations/:type/series */
export interface Series {
  run_id: string | null;
  started_at: string | null;
  finished_at: string | null;
  bucket_s: number;
  points: SeriesPoint[];
}

/** GET /settings */
export interface Settings {
  sleep_time_ms: number;
  drain_wait_ms: number;
  couchdb_budget_p99_ms: number;
}

/** GET /survey */
export interface Survey {
  state: string;
  orgs_surveyed?: number;
  orgs_total?: number;
  finished_at: string | null;
  totals?: Record<string, number>;
  estimate?: { concurrency: number; drain_wait_ms: number; seconds: number };
}

/** GET /orgs/:name */
export interface Org {
  org_name: string;
  org_id: string | null;
  states?: Record<string, { state: string; fail_location: string | null; fail_detail: string | null; dark_ms: number | null }>;
  /** What Chef does with the org's requests; error when a key Chef reads is not a hash. */
  darklaunch?: { effective: { containers?: string; groups?: string; down?: boolean; error?: string } };
  failures?: { run_id: string | null; step: string; kind: string; detail: string | null; at: string }[];
  survey: { containers: number | null; groups: number | null; findings?: string[] } | null;
}

export interface Step {
  id: string;
  title: string;
  state: string;
  /** What the step reports, which varies by step: counts, run_id, a note, a manual step's command. */
  detail: Record<string, unknown>;
  confirmed_by?: string;
}
export interface Phase {
  phase: number;
  title: string;
  state: string;
  started_by: string | null;
  steps: Step[];
}
/** GET /phases */
export interface Phases {
  phases: Phase[];
}

/** Any reply to an action, as far as the page reads it: a refusal's code and reason, and a phase start's preflight problems. */
export interface ActionReply {
  error?: string;
  message?: string;
  preflight?: { problem: string; fix?: string | null }[];
}
