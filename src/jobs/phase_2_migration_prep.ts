// phase_2_migration_prep (runbook 2.5): every org of the account snapshot
// that is not pre-created and not yet captured is pinned to CouchDB
// (dl_org_<org> couchdb_* = true) and captured as 'holding', before dl_default
// flips to SQL. Orgs already captured are left alone. Work goes in batches:
// one job per 2,000 orgs, one pipelined Redis write and one INSERT each.
import type { Job } from 'bullmq';
import type { Context } from '../context.js';
import * as runs from '../db/runs.js';
import { ConflictError, errorMessage } from '../errors.js';
import { haltFleet } from '../runs/halt.js';
import { JOB_OPTIONS } from '../runs/manager-options.js';
import { classifyPgError } from '../stores/postgres.js';
import { orgsWithSqlRows } from '../db/org-objects.js';

export const type = 'phase_2_migration_prep';
/** The migration type the prep captures orgs for. */
export const CAPTURES_FOR = 'phase_2_migration';
export const BATCH_SIZE = 2000;

export interface PrepBatch {
  runId: string;
  batch: number;
  orgs: { name: string; guid: string }[];
}

/** Snapshot orgs not pre-created and with no phase_2_migration row yet. */
async function uncaptured(ctx: Context, names?: string[]): Promise<{ name: string; guid: string }[]> {
  const { rows } = await ctx.db.query(
    `SELECT a.name, a.guid FROM mover.account_orgs a
     WHERE a.snapshot_id = (SELECT snapshot_id FROM mover.account_snapshot_current) AND NOT a.precreated
       AND ($2::text[] IS NULL OR a.name = ANY($2))
       -- Two anti-joins, not one with OR, so each uses its unique index.
       AND NOT EXISTS (SELECT 1 FROM org_migration_state s WHERE s.migration_type = $1 AND s.org_name = a.name)
       AND NOT EXISTS (SELECT 1 FROM org_migration_state s WHERE s.migration_type = $1 AND s.org_id = a.guid)
     ORDER BY a.name`,
    [CAPTURES_FOR, names ?? null],
  );
  return rows;
}

export async function startPrep(ctx: Context, concurrency: number): Promise<runs.RunRow> {
  const orgs = await uncaptured(ctx);
  const run = await runs.createRun(ctx.db, type, null, orgs.length, concurrency);
  if (!run) throw new ConflictError(`a ${type} run is already active`, 'run_active');
  const queue = ctx.queues[type];
  await queue.setGlobalConcurrency(concurrency);
  await queue.removeGlobalRateLimit(); // the prep pass runs unpaced (runbook: sleep_time 0)
  const jobs = [];
  for (let i = 0; i * BATCH_SIZE < orgs.length; i++) {
    const data: PrepBatch = { runId: run.id, batch: i, orgs: orgs.slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE) };
    jobs.push({ name: type, data, opts: { ...JOB_OPTIONS, jobId: `r${run.id}.b${i}` } });
  }
  for (let i = 0; i < jobs.length; i += 100) await queue.addBulk(jobs.slice(i, i + 100));
  ctx.log.info({ migration_type: type, run_id: run.id, orgs: orgs.length, batches: jobs.length }, 'prep run started');
  await runs.finishRunIfDone(ctx.db, run.id);
  return run;
}

export async function process(ctx: Context, job: Job<PrepBatch>): Promise<{ captured: number; alreadyCaptured: number; onSql?: number; skipped?: boolean }> {
  const { runId, orgs } = job.data;
  const log = ctx.log.child({ migration_type: type, run_id: runId, batch: job.data.batch });
  const run = await runs.getRun(ctx.db, runId);
  if (!run || run.state !== 'working') {
    await ctx.db.query(`UPDATE mover.migration_runs SET orgs_skipped = orgs_skipped + $2 WHERE id = $1`, [runId, orgs.length]);
    await runs.finishRunIfDone(ctx.db, runId);
    return { captured: 0, alreadyCaptured: 0, skipped: true };
  }
  try {
    // Re-checked now: an org captured since the run started is left alone.
    const uncapturedNow = await uncaptured(ctx, orgs.map((o) => o.name)).catch((err) => { throw classifyPgError(err, 'prep read'); });
    const todoNames = new Set(uncapturedNow.map((o) => o.name));
    for (const o of orgs) if (!todoNames.has(o.name)) log.warn({ org_name: o.name }, 'org already captured; left alone');
    // An org whose containers/groups are already in SQL was made there (after
    // dl_default flipped): pinning it to CouchDB would hide its data.
    const onSql = await orgsWithSqlRows(ctx.db, uncapturedNow.map((o) => o.guid)).catch((err) => { throw classifyPgError(err, 'prep read'); });
    for (const o of uncapturedNow) if (onSql.has(o.guid)) log.warn({ org_name: o.name, org_id: o.guid }, 'org already has containers/groups in SQL (made on SQL); not pinned to CouchDB, not captured');
    const todo = uncapturedNow.filter((o) => !onSql.has(o.guid));
    // Pin first, capture second: a captured org is always pinned, even if this job dies in between.
    await ctx.darklaunch.pinOrgsToCouch(todo.map((o) => o.name));
    const { rows } = await ctx.db
      .query(
        `INSERT INTO org_migration_state (org_name, org_id, migration_type)
         SELECT n, g, $3 FROM unnest($1::text[], $2::text[]) AS t(n, g) ON CONFLICT DO NOTHING RETURNING org_name`,
        [todo.map((o) => o.name), todo.map((o) => o.guid), CAPTURES_FOR],
      )
      .catch((err) => { throw classifyPgError(err, 'prep capture'); });
    await ctx.db.query(`UPDATE mover.migration_runs SET orgs_finished = orgs_finished + $2 WHERE id = $1`, [runId, orgs.length]);
    await runs.finishRunIfDone(ctx.db, runId);
    log.info({ captured: rows.length, already_captured: orgs.length - rows.length - onSql.size, on_sql: onSql.size }, 'prep batch done');
    return { captured: rows.length, alreadyCaptured: orgs.length - rows.length - onSql.size, onSql: onSql.size };
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'prep batch failed; halting the prep run');
    await haltFleet(ctx, type, runId, `prep batch ${job.data.batch}: ${errorMessage(err)}`, true).catch((e) => log.error({ err: errorMessage(e) }, 'could not record the halt'));
    throw err;
  }
}
