// The estate survey as an operator sees it (docs/api.md, "Survey"): started
// as a run of its job kind (src/jobs/estate_survey.ts), one at a time, and
// reported from its latest run and its batches' totals, never from a scan of
// its orgs' results, so GET /survey stays cheap at any size.
import { runState, stopReason } from './run-state.js';
import type { Context } from '../context.js';
import { snapshotStatus } from '../db/account-snapshot.js';
import { latestRun, type RunRow } from '../db/runs.js';
import { getSettings } from '../db/settings.js';
import { largestOrgs, surveyTotals } from '../db/survey.js';
import { StateConflictError } from '../errors.js';
import { FINDINGS, SKIP_RULES } from '../migration/survey-findings.js';
import { ESTATE_SURVEY, PHASE_2_MIGRATION } from '../queue-names.js';
import { haltRun, startRun } from './manager.js';
import { windowEstimate, type WindowEstimate } from './window-estimate.js';

/** Batches read at once, fleet-wide, when the start names no concurrency. */
export const DEFAULT_SURVEY_CONCURRENCY = 8;
/** A migration run's concurrency when none was ever set (POST /migrations/:type/start's default). */
const DEFAULT_MIGRATION_CONCURRENCY = 8;
export const LARGEST = 10;

export type SurveyState = 'not_started' | 'running' | 'completed' | 'failed' | 'halted';

/** Starts a survey of every org of the account snapshot (not pre-created); 409 while one runs, or with no snapshot to survey. */
export async function startSurvey(ctx: Context, concurrency = DEFAULT_SURVEY_CONCURRENCY): Promise<RunRow> {
  if (!(await snapshotStatus(ctx.db)).refreshed_at)
    throw new StateConflictError('there is no account snapshot to survey: refresh it first (POST /account/refresh)', 'no_snapshot');
  // One at a time: a second start while one runs is startRun's 409 run_active.
  return (await startRun(ctx, ESTATE_SURVEY, { count: 'all', concurrency })).run;
}

export const haltSurvey = (ctx: Context, by: string) => haltRun(ctx, ESTATE_SURVEY, by);

/** A run's state in the survey's words: a run's own (src/runs/run-state.ts), with working and halting both "running". */
export function surveyState(run: RunRow | null): SurveyState {
  const state = runState(run);
  return state === 'working' || state === 'halting' ? 'running' : state;
}

export interface EstimateQuery {
  concurrency?: number;
  drainWaitMs?: number;
  sleepTimeMs?: number;
}

/** GET /survey: the latest survey's state, totals by finding, largest orgs, and the window estimate (for the given settings, else the current ones). */
export async function surveyStatus(ctx: Context, q: EstimateQuery = {}) {
  const run = await latestRun(ctx.db, ESTATE_SURVEY);
  const settings = await getSettings(ctx.db);
  const concurrency = q.concurrency ?? (await ctx.queues[PHASE_2_MIGRATION].getGlobalConcurrency()) ?? DEFAULT_MIGRATION_CONCURRENCY;
  const t = run ? await surveyTotals(ctx.db, run.id) : {};
  const n = (k: string) => t[k] ?? 0;
  const estimate: WindowEstimate = windowEstimate({
    orgs: n('to_migrate'),
    copyMsTotal: n('to_migrate_copy_ms'),
    concurrency,
    drainWaitMs: q.drainWaitMs ?? settings.drainWaitMs,
    sleepTimeMs: q.sleepTimeMs ?? settings.sleepTimeMs,
  });
  const largest = run ? await largestOrgs(ctx.db, run.id, LARGEST) : [];
  return {
    state: surveyState(run),
    run_id: run?.id ?? null,
    started_at: run?.started_at.toISOString() ?? null,
    finished_at: run?.finished_at?.toISOString() ?? null,
    orgs_surveyed: run?.orgs_finished ?? 0,
    orgs_total: run?.enqueued ?? 0,
    totals: Object.fromEntries(FINDINGS.map((f) => [f, n(`finding:${f}`)])),
    skipped_documents: Object.fromEntries(SKIP_RULES.map((r) => [r, n(`skipped:${r}`)])),
    sizes: { containers: n('containers'), groups: n('groups'), documents: n('documents'), bytes: n('bytes') },
    copy_ms_mean: n('copied') ? Math.round((n('copy_ms') / n('copied')) * 100) / 100 : null,
    largest: largest.map((o) => ({
      org_name: o.org_name,
      org_id: o.org_id,
      containers: o.containers,
      groups: o.groups,
      documents: o.documents,
      bytes: o.bytes,
      copy_ms: o.copy_ms,
    })),
    estimate,
    concurrency: run?.concurrency ?? null,
    stop_reason: stopReason(run),
    breaker: run ? { state: run.breaker, reason: run.breaker_reason, since: run.breaker_since?.toISOString() ?? null } : null,
    csv: '/survey/orgs.csv',
  };
}
