// phase_2_migration_prep (runbook 2.5): every org of the account snapshot
// that is not pre-created and not yet captured is pinned to CouchDB
// (dl_org_<org> couchdb_* = true) and captured as 'holding', before dl_default
// flips to SQL. Orgs already captured are left alone. Work goes in batches:
// one job per 2,000 orgs, one pipelined Redis write and one INSERT each.
import type { Job } from 'bullmq';
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { errorMessage, isOrgError } from '../errors.js';
import { haltFleet } from '../frame/halt.js';
import { tripOnFault } from '../frame/breaker.js';
import { retryFailedBatches, workingRunOrSkip } from '../frame/batch-job.js';
import { classifyPgError } from '../stores/postgres.js';
import { orgsWithSqlRows } from '../db/org-objects.js';
import { uncapturedOrgs } from '../db/account-snapshot.js';
import { insertOrgs } from '../db/state-tracker.js';
import type { BatchJobData, JobKind } from '../frame/kind.js';
import { PHASE_2_MIGRATION, PHASE_2_MIGRATION_PREP } from '../queue-names.js';

export const type = PHASE_2_MIGRATION_PREP;
/** The migration type the prep captures orgs for. */
export const CAPTURES_FOR = PHASE_2_MIGRATION;
export const BATCH_SIZE = 2000;

export const kind: JobKind = {
  type,
  // Batches of 2,000 are heavy on Postgres; two per process is plenty.
  slotsPerProcess: 2,
  run: {
    paced: false, // the runbook runs the prep pass with sleep_time 0
    batchSize: BATCH_SIZE,
    // It pins orgs to CouchDB with flags of their own, whatever dl_default says.
    checksRouting: false,
    selectTargets: async (ctx, _req, page) => {
      const targets = await uncapturedOrgs(ctx.db, CAPTURES_FOR, undefined, page.size, page.after);
      return { targets, last: targets.at(-1)?.name ?? null };
    },
  },
  process: (ctx, job) => prepBatch(ctx, job as Job<BatchJobData>),
  retryAfterBreaker: (ctx, runId) => retryFailedBatches(ctx, type, runId),
};

async function prepBatch(ctx: Context, job: Job<BatchJobData>): Promise<{ captured: number; alreadyCaptured: number; onSql?: number; skipped?: boolean }> {
  const { runId, orgs } = job.data;
  const log = ctx.log.child({ migration_type: type, run_id: runId, batch: job.data.batch });
  if (!(await workingRunOrSkip(ctx, job.data))) return { captured: 0, alreadyCaptured: 0, skipped: true };
  try {
    // Re-checked now: an org captured since the run started is left alone.
    const uncapturedNow = await uncapturedOrgs(
      ctx.db,
      CAPTURES_FOR,
      orgs.map((o) => o.name),
    ).catch((err) => {
      throw classifyPgError(err, 'prep read');
    });
    const todoNames = new Set(uncapturedNow.map((o) => o.name));
    for (const o of orgs) if (!todoNames.has(o.name)) log.warn({ org_name: o.name }, 'org already captured; left alone');
    // An org whose containers/groups are already in SQL was made there (after
    // dl_default flipped): pinning it to CouchDB would hide its data.
    const onSql = await orgsWithSqlRows(
      ctx.db,
      uncapturedNow.map((o) => o.guid),
    ).catch((err) => {
      throw classifyPgError(err, 'prep read');
    });
    for (const o of uncapturedNow)
      if (onSql.has(o.guid))
        log.warn({ org_name: o.name, org_id: o.guid }, 'org already has containers/groups in SQL (made on SQL); not pinned to CouchDB, not captured');
    const todo = uncapturedNow.filter((o) => !onSql.has(o.guid));
    // Pin first, capture second: a captured org is always pinned, even if this job dies in between.
    for (const name of await ctx.darklaunch.pinOrgsToCouch(todo.map((o) => o.name)))
      log.warn({ org_name: name }, 'org already had a routing field of its own; its flags were left as they were (a pin sets only fields that are absent)');
    const { inserted } = await insertOrgs(ctx.db, CAPTURES_FOR, todo).catch((err) => {
      throw classifyPgError(err, 'prep capture');
    });
    if (!(await runs.countOnce(ctx.db, runId, `batch:${job.data.batch}`, { finished: orgs.length })))
      log.warn('batch delivered again; its orgs were counted the first time');
    await runs.finishRunIfDone(ctx.db, runId);
    log.info({ captured: inserted.length, already_captured: orgs.length - inserted.length - onSql.size, on_sql: onSql.size }, 'prep batch done');
    return { captured: inserted.length, alreadyCaptured: orgs.length - inserted.length - onSql.size, onSql: onSql.size };
  } catch (err) {
    // A data error (a row Postgres refuses) would fail again on every retry: the run halts for an operator.
    if (isOrgError(err)) {
      log.error({ err: errorMessage(err) }, 'prep batch failed on its data; halting the prep run');
      await haltFleet(ctx, type, runId, `prep batch ${job.data.batch}: ${errorMessage(err)}`, true).catch((e) =>
        log.error({ err: errorMessage(e) }, 'could not record the halt'),
      );
      throw err;
    }
    log.error({ err: errorMessage(err) }, 'prep batch failed; the prep run pauses');
    // Its orgs are not counted: the run cannot end without them. A batch is
    // safe to run again (it captures only what is still uncaptured), so the
    // breaker, once the stores answer, queues it again.
    await tripOnFault(ctx, log, type, runId, `prep batch ${job.data.batch}: ${errorMessage(err)}`);
    throw err;
  }
}
