// estate_survey: know the estate before phase 1 (docs/domain.md, "The estate
// survey"). A read-only run over every org of the account snapshot that is
// not pre-created, in batches of 50 by name, unpaced, its concurrency the
// batches read at once fleet-wide. Per org it reads the org database (paged),
// plans its containers and groups with the migration's own code, reads the
// darklaunch hashes Chef reads for it and its rows in SQL, and says why the
// migration would refuse the org in its own words (its preflight, its
// claim's guard). It writes nothing to CouchDB, Chef's tables or the
// darklaunch Redis: only its results, in mover's schema (src/db/survey.ts).
// A batch delivered again writes the same results again; a batch that fails
// on a store opens the run's breaker and is delivered again when it closes.
import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Context } from '../context.js';
import { snapshotOrgs } from '../db/account-snapshot.js';
import * as runs from '../db/runs.js';
import { dropEarlierSurveys, recordBatch, sqlStanding, type SqlStanding } from '../db/survey.js';
import { DarklaunchKeyTypeError, DEFAULT_KEY, OVERRIDE_KEY } from '../darklaunch.js';
import { errorMessage, isOrgError, type OrgDataError } from '../errors.js';
import { retryFailedBatches, workingRunOrSkip } from '../frame/batch-job.js';
import { tripOnFault } from '../frame/breaker.js';
import type { BatchJobData, JobKind, OrgTarget } from '../frame/kind.js';
import { surveyCopies, type OrgCopy } from '../migration/org-survey.js';
import {
  batchTotals,
  darklaunchFindings,
  planFindings,
  SKIPPED_KEPT,
  stillToMigrate,
  type Finding,
  type KeyRead,
  type OrgSurvey,
} from '../migration/survey-findings.js';
import { ESTATE_SURVEY, PHASE_2_MIGRATION } from '../queue-names.js';
import { migration } from './phase_2_migration.js';

export const type = ESTATE_SURVEY;
/** Orgs a job: a batch is read one org after another, its results written in one transaction. A seam for tests. */
export const surveyBatching = { orgs: 50 };

export const kind: JobKind = {
  type,
  run: {
    paced: false,
    get batchSize() {
      return surveyBatching.orgs;
    },
    // It reads each org's routing and changes none.
    checksRouting: false,
    selectTargets: async (ctx, _req, page) => {
      const targets = await snapshotOrgs(ctx.db, page.after, page.size);
      return { targets, last: targets.at(-1)?.name ?? null };
    },
    // GET /survey shows the latest survey: an earlier one's results go as this one takes its orgs.
    markInRun: (q, runId) => dropEarlierSurveys(q, runId),
  },
  process: (ctx, job) => surveyJob(ctx, job as Job<BatchJobData>),
  retryAfterBreaker: (ctx, runId) => retryFailedBatches(ctx, type, runId),
};

async function surveyJob(ctx: Context, job: Job<BatchJobData>): Promise<{ surveyed: number; skipped?: boolean }> {
  const { runId, orgs, batch } = job.data;
  const log = ctx.log.child({ migration_type: type, run_id: runId, batch });
  if (!(await workingRunOrSkip(ctx, job.data))) return { surveyed: 0, skipped: true };
  try {
    const results = await surveyBatch(ctx, runId, orgs, log);
    await recordBatch(ctx.db, runId, batch, results, batchTotals(results));
  } catch (err) {
    // A store away: the batch is safe to survey again, so the breaker delivers it again once the stores answer.
    log.error({ err: errorMessage(err) }, 'survey batch failed; the survey pauses');
    await tripOnFault(ctx, log, type, runId, `survey batch ${batch}: ${errorMessage(err)}`);
    throw err;
  }
  if (!(await runs.countOnce(ctx.db, runId, `batch:${batch}`, { finished: orgs.length })))
    log.warn('batch delivered again; its orgs were counted the first time');
  await runs.finishRunIfDone(ctx.db, runId);
  return { surveyed: orgs.length };
}

/** What the batch's orgs share (dl_default, dl_override) and each one's own dl_org_<org>, read once for the batch. */
async function darklaunchReads(ctx: Context, names: string[]): Promise<{ dl_default: KeyRead; dl_override: KeyRead; orgs: KeyRead[] }> {
  const notHashes = await ctx.darklaunch.keysNotHashes([DEFAULT_KEY, OVERRIDE_KEY]);
  const read = async (key: string): Promise<KeyRead> => {
    const wrong = notHashes.find((p) => p.key === key);
    if (wrong) return { type: wrong.type };
    try {
      return { hash: await ctx.darklaunch.getHash(key) };
    } catch (err) {
      // Made something else since its type was read: as Chef would find it now.
      if (err instanceof DarklaunchKeyTypeError) return { type: err.problem.type };
      throw err;
    }
  };
  return { dl_default: await read(DEFAULT_KEY), dl_override: await read(OVERRIDE_KEY), orgs: await ctx.darklaunch.orgHashes(names) };
}

async function surveyBatch(ctx: Context, runId: string, orgs: OrgTarget[], log: Logger): Promise<OrgSurvey[]> {
  const [standing, flags] = await Promise.all([
    sqlStanding(
      ctx.db,
      PHASE_2_MIGRATION,
      orgs.map((o) => o.guid),
    ),
    darklaunchReads(
      ctx,
      orgs.map((o) => o.name),
    ),
  ]);
  const copies = await surveyCopies(
    ctx,
    orgs.map((o) => o.guid),
    log,
  );
  const out: OrgSurvey[] = [];
  for (const [i, org] of orgs.entries()) {
    const reads = { dl_default: flags.dl_default, dl_override: flags.dl_override, dl_org: flags.orgs[i] };
    out.push(await surveyOrg(ctx, runId, org, standing.get(org.guid)!, reads, copies.get(org.guid)!, log.child({ org_name: org.name, org_id: org.guid })));
  }
  return out;
}

async function surveyOrg(
  ctx: Context,
  runId: string,
  org: OrgTarget,
  standing: SqlStanding,
  reads: Parameters<typeof darklaunchFindings>[2],
  read: OrgCopy | OrgDataError,
  log: Logger,
): Promise<OrgSurvey> {
  const dl = darklaunchFindings(org.name, standing.state, reads);
  const findings: Finding[] = [...dl.findings];
  const detail: Record<string, unknown> = dl.problems.length ? { darklaunch: dl.problems } : {};
  const copy = read instanceof Error ? null : read;
  if (read instanceof Error) {
    // The org's own database (a 404: missing; another 4xx): a finding.
    const missing = read.detail?.statusCode === 404;
    findings.push(missing ? 'missing_database' : 'unreadable_database');
    detail.error = errorMessage(read);
    log.warn({ err: errorMessage(read) }, missing ? 'org database missing: the migration would fail the org at migrate' : 'org database unreadable');
  }
  if (copy) {
    const planned = planFindings(copy.plan);
    findings.push(...planned.findings);
    detail.skipped_by_rule = planned.skipped;
    detail.skipped = copy.plan.skipped.slice(0, SKIPPED_KEPT).map((s) => ({ doc_id: s.docId, table: s.table, rule: s.reason, kept_doc_id: s.keptDocId }));
    detail.no_requester = copy.plan.noRequester.length;
    for (const s of copy.plan.skipped) log.info({ doc_id: s.docId, table: s.table, reason: s.reason }, 'document the migration would skip');
  }
  if (standing.foreign_rows) findings.push('foreign_rows');
  // The preflight reads the same hashes and goes by the same rule (src/chef-routing.ts): it is asked, in its own words, about the orgs that rule says it refuses.
  const askPreflight = stillToMigrate(standing.state) && dl.served_from !== 'couchdb';
  const refusal = askPreflight
    ? await wouldRefuse(ctx, runId, org, standing.foreign_rows, log)
    : stillToMigrate(standing.state)
      ? claimRefusal(standing.foreign_rows)
      : null;
  if (refusal) findings.push('preflight_refused');
  return {
    org_name: org.name,
    org_id: org.guid,
    migration_state: standing.state,
    containers: copy ? copy.plan.containers.length + copy.plan.skipped.filter((s) => s.table === 'containers').length : null,
    groups: copy ? copy.plan.groups.length + copy.plan.skipped.filter((s) => s.table === 'groups').length : null,
    documents: copy?.documents ?? null,
    bytes: copy?.bytes ?? null,
    copy_ms: copy?.copy_ms ?? null,
    served_from: dl.served_from,
    sql_rows: standing.sql_rows,
    foreign_rows: standing.foreign_rows,
    refusal,
    findings,
    detail,
  };
}

/** What the migration's claim says of rows in SQL mover did not write (its guard, 'foreign_rows'), or null. */
const claimRefusal = (foreignRows: number) => (foreignRows && migration.claimGuard ? errorMessage(migration.claimGuard.refusal(foreignRows)) : null);

/**
 * Why the migration would not take the org, in its own words: its preflight
 * (Chef's routing, read now) and its claim's guard (rows in SQL mover did
 * not write), both the migration's own code, called as it calls them; or null.
 */
async function wouldRefuse(ctx: Context, runId: string, org: OrgTarget, foreignRows: number, log: Logger): Promise<string | null> {
  try {
    await migration.preflight?.(ctx, { type, orgType: PHASE_2_MIGRATION, runId, orgName: org.name, orgId: org.guid, log });
  } catch (err) {
    // Its refusal; or a dl_default or dl_override Chef cannot read, on which a migration run would pause.
    if (isOrgError(err) || err instanceof DarklaunchKeyTypeError) return errorMessage(err);
    throw err;
  }
  return claimRefusal(foreignRows);
}
