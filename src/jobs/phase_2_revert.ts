// phase_2_revert (legacy demigration): a completed org goes back to CouchDB.
// Its SQL containers and groups are deleted, its phase_2_migration state goes
// back to 'ready', and it is routed to CouchDB. Safe to re-run: an org that is
// not completed is skipped.
import type { Job } from 'bullmq';
import type { Context } from '../context.js';
import { tryLock } from '../db/advisory-lock.js';
import { deleteOwnedOrgObjects } from '../db/org-objects.js';
import * as runs from '../db/runs.js';
import { ConflictError, errorMessage, isDataError } from '../errors.js';
import { orgLogger } from '../log.js';
import { haltFleet } from '../runs/halt.js';
import { JOB_OPTIONS } from '../runs/manager-options.js';
import { routingPreflight } from '../runs/routing-preflight.js';
import { inTransaction } from '../stores/postgres.js';

export const type = 'phase_2_revert';
const MIGRATED = 'phase_2_migration';

export const revertMark = (runId: string) => `revert:${runId}`;
export const revertJobId = (runId: string, orgId: string) => `r${runId}.${orgId}`;

async function clearRevertMark(ctx: Context, orgName: string) {
  await ctx.db.query(`UPDATE mover.org_progress SET current_step = NULL WHERE migration_type = $1 AND org_name = $2 AND current_step LIKE 'revert:%'`, [MIGRATED, orgName]);
}

/**
 * For the reconciler: a completed org whose revert job was lost mid-way (its
 * mark is set, its job is not live) is put back as it was — routed to SQL and
 * up — since it is still completed in SQL.
 */
export async function restoreLostReverts(ctx: Context, isLive: (jobId: string) => Promise<boolean>): Promise<string[]> {
  const { rows } = await ctx.db.query(
    `SELECT p.org_name, p.org_id, p.current_step FROM mover.org_progress p
     JOIN org_migration_state s ON s.migration_type = p.migration_type AND s.org_id = p.org_id
     WHERE p.migration_type = $1 AND p.current_step LIKE 'revert:%' AND s.state = 'completed'`,
    [MIGRATED],
  );
  const restored: string[] = [];
  for (const r of rows) {
    const runId = String(r.current_step).slice('revert:'.length);
    if (await isLive(revertJobId(runId, r.org_id))) continue;
    const lock = await tryLock(ctx.db, MIGRATED, r.org_name);
    if (!lock) continue;
    try {
      const still = await ctx.db.query(
        `SELECT s.state, p.current_step FROM org_migration_state s JOIN mover.org_progress p ON p.migration_type = s.migration_type AND p.org_id = s.org_id
         WHERE s.migration_type = $1 AND s.org_id = $2`,
        [MIGRATED, r.org_id],
      );
      if (still.rows[0]?.state !== 'completed' || still.rows[0].current_step !== r.current_step) continue;
      await ctx.darklaunch.routeOrg(r.org_name, false);
      await ctx.darklaunch.setOrgDown(r.org_name, false);
      await clearRevertMark(ctx, r.org_name);
      orgLogger(ctx.log, r.org_name, type).warn({ run_id: runId }, 'revert job was lost; org left completed, routed to SQL and up');
      restored.push(r.org_name);
    } finally {
      await lock.release();
    }
  }
  return restored;
}

export interface RevertJob {
  runId: string;
  orgName: string;
  orgId: string;
}

export async function startRevert(ctx: Context, orgs: string[] | 'all', concurrency: number) {
  // Routing orgs back to CouchDB means nothing while dl_override decides for every org.
  await routingPreflight(ctx, 'any');
  const { rows } = await ctx.db.query(
    `SELECT org_name, org_id FROM org_migration_state WHERE migration_type = $1 AND state = 'completed' AND ($2::text[] IS NULL OR org_name = ANY($2)) ORDER BY org_id`,
    [MIGRATED, orgs === 'all' ? null : orgs],
  );
  const run = await runs.createRun(ctx.db, type, orgs === 'all' ? null : orgs.length, rows.length, concurrency);
  if (!run) throw new ConflictError(`a ${type} run is already active`, 'run_active');
  const queue = ctx.queues[type];
  await queue.setGlobalConcurrency(concurrency);
  await queue.addBulk(
    rows.map((r) => ({ name: type, data: { runId: run.id, orgName: r.org_name, orgId: r.org_id } satisfies RevertJob, opts: { ...JOB_OPTIONS, jobId: revertJobId(run.id, r.org_id) } })),
  );
  await runs.finishRunIfDone(ctx.db, run.id);
  const taken = new Set(rows.map((r) => r.org_name as string));
  return { run, skipped: orgs === 'all' ? [] : orgs.filter((o) => !taken.has(o)) };
}

export async function process(ctx: Context, job: Job<RevertJob>): Promise<{ outcome: string }> {
  const { runId, orgName, orgId } = job.data;
  const log = orgLogger(ctx.log, orgName, type).child({ run_id: runId });
  const lock = await tryLock(ctx.db, MIGRATED, orgName);
  if (!lock) return { outcome: 'skipped' };
  let reverted = false;
  try {
    const run = await runs.getRun(ctx.db, runId);
    const { rows } = await ctx.db.query(`SELECT state FROM org_migration_state WHERE migration_type = $1 AND org_name = $2`, [MIGRATED, orgName]);
    if (run?.state !== 'working' || rows[0]?.state !== 'completed') {
      await runs.countSkipped(ctx.db, runId);
      return { outcome: 'skipped' };
    }
    // Marked before anything changes, so the reconciler can put the org back if this job is lost mid-way.
    await ctx.db.query(`UPDATE mover.org_progress SET current_step = $3 WHERE migration_type = $1 AND org_id = $2`, [MIGRATED, orgId, revertMark(runId)]);
    // Dark while the routing and the rows change, so no request sees half of it.
    await ctx.darklaunch.setOrgDown(orgName, true);
    await ctx.darklaunch.routeOrg(orgName, true);
    reverted = await inTransaction(ctx.db, async (c) => {
      const moved = await c.query(
        `UPDATE org_migration_state SET state = 'ready', migration_start = NULL, migration_end = NULL, fail_location = NULL
         WHERE migration_type = $1 AND org_id = $2 AND state = 'completed'`,
        [MIGRATED, orgId],
      );
      if (moved.rowCount !== 1) return false;
      await deleteOwnedOrgObjects(c, MIGRATED, orgId);
      await c.query(`UPDATE mover.org_progress SET run_id = NULL, current_step = NULL, fail_detail = NULL, updated_at = now() WHERE migration_type = $1 AND org_id = $2`, [MIGRATED, orgId]);
      await runs.countFinished(c, runId, false);
      return true;
    });
    if (!reverted) await ctx.darklaunch.routeOrg(orgName, false); // it moved on meanwhile: leave its routing as it was
    await ctx.darklaunch.setOrgDown(orgName, false);
    if (!reverted) await clearRevertMark(ctx, orgName);
    log.info({ reverted }, reverted ? 'org reverted to CouchDB' : 'org no longer completed; left as it was');
    return { outcome: reverted ? 'reverted' : 'skipped' };
  } catch (err) {
    log.error({ err: errorMessage(err), reverted }, 'revert failed; putting the org back as it was');
    // Not reverted: it stays completed, so it must stay routed to SQL, and up.
    if (!reverted) await ctx.darklaunch.routeOrg(orgName, false).catch(() => {});
    await ctx.darklaunch.setOrgDown(orgName, false).catch(() => {});
    if (!reverted) await clearRevertMark(ctx, orgName).catch(() => {});
    await runs.countFinished(ctx.db, runId, true).catch(() => {});
    if (!isDataError(err)) await haltFleet(ctx, type, runId, `revert of ${orgName}: ${errorMessage(err)}`, true).catch(() => {});
    throw err;
  } finally {
    await runs.finishRunIfDone(ctx.db, runId).catch(() => {});
    await lock.release();
  }
}
