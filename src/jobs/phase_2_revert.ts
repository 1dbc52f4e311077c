// phase_2_revert (legacy demigration): a completed org goes back to CouchDB.
// The org goes dark and waits the drain wait; then its SQL rows are compared
// with its CouchDB documents. Anything the Chef API changed on SQL since the
// migration would be lost (or a deleted object resurrected) by the revert, so
// by default such an org is refused: it stays completed, on SQL, up, and its
// differences are recorded. With writeBack, the differences are written to
// CouchDB first (src/migration/write-back.ts), then it is reverted: routed to
// CouchDB, its SQL rows deleted, its state back to 'ready'. Safe to re-run: an
// org that is not completed is skipped.
import type { Job } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../context.js';
import { deleteOwnedOrgObjects } from '../db/org-objects.js';
import * as reverts from '../db/reverts.js';
import * as runs from '../db/runs.js';
import { getSettings } from '../db/settings.js';
import * as tracker from '../db/state-tracker.js';
import { errorMessage, isDataError, OrgDataError } from '../errors.js';
import { orgLogger } from '../log.js';
import { compareOrg, writeBack, type Difference } from '../migration/write-back.js';
import { tripOnFault } from '../frame/breaker.js';
import { takeOrgLease } from '../frame/org-lease.js';
import { classifyPgError, inTransaction } from '../stores/postgres.js';
import { OutcomeUnknownError } from '../stores/outage.js';
import { isLive, orgJobId, type JobKind, type JobState, type OrgJobData } from '../frame/kind.js';

export const type = 'phase_2_revert';
const M = reverts.MIGRATED;

export const kind: JobKind = {
  type,
  run: {
    // Unpaced: the drain wait inside each job is its pacing.
    paced: false,
    batchSize: 1,
    // Routing orgs back to CouchDB means nothing while dl_override decides for every org.
    checksRouting: true,
    async selectTargets(ctx, req, page) {
      const targets = await reverts.completedOrgs(ctx.db, req.orgs ?? null, page.size, page.after);
      return { targets, last: targets.at(-1)?.guid ?? null };
    },
    report: async (ctx, run) => ({ params: run.params, not_reverted: await reverts.unrevertedInRun(ctx.db, run.id) }),
  },
  process: (ctx, job) => process(ctx, job as Job<OrgJobData>),
  reconcile: (ctx, jobState) => restoreLostReverts(ctx, jobState),
};

/** This revert no longer holds the org's lease (it stalled past it and another took the org). */
class LeaseLostError extends Error {
  constructor() {
    super('the org lease was taken over');
    this.name = 'LeaseLostError';
  }
}

type Outcome = { outcome: 'reverted' | 'refused' | 'skipped'; differences?: Difference[]; writtenBack?: number };

async function process(ctx: Context, job: Job<OrgJobData>): Promise<Outcome> {
  const { runId, orgName, orgId } = job.data;
  const log = orgLogger(ctx.log, orgName, type).child({ run_id: runId });
  // The migrated org's lease: a revert never races a migration delivery or the reconciler.
  const taken = await takeOrgLease(ctx, M, orgId, orgName);
  if (!taken) return { outcome: 'skipped' };
  let reverted = false;
  // Set when a COMMIT's answer was lost and the org could not be read back: nobody knows if it reverted.
  let unknown = false;
  // Before each darklaunch write: a revert that stalled past its lease (another took the org over) must not touch the org's flags.
  // Taking the lease back proves nothing if another revert finished the org and let it go: the org must still be completed, marked by this run.
  const mine = async () => {
    if (!taken.lease.lost) return;
    const again = await taken.lease.retake();
    if (again?.org?.state !== 'completed' || again.org.current_step !== tracker.revertMark(runId)) throw new LeaseLostError();
  };
  try {
    // A job delivered again for an org this run already has a result for was counted the first time.
    if (await reverts.hasResult(ctx.db, runId, orgName)) return { outcome: 'skipped' };
    const run = await runs.getRun(ctx.db, runId);
    if (run?.state !== 'working' || !(await reverts.isCompleted(ctx.db, orgId))) {
      await runs.countOnce(ctx.db, runId, `skip:${orgId}`, { skipped: 1 });
      return { outcome: 'skipped' };
    }
    const writeBackAsked = run.params.writeBack === true;
    // Only an org Chef serves from SQL is reverted: one it serves from CouchDB already takes its writes there, and a write-back of its SQL rows would overwrite them.
    const notOnSql = await ctx.darklaunch.whyNotServedFrom(orgName, 'sql');
    if (notOnSql) {
      await refuseUntouched(
        ctx,
        orgId,
        orgName,
        `${notOnSql}; it is not reverted: its SQL rows may be stale, and a write-back would overwrite what Chef wrote to CouchDB`,
        runId,
      );
      log.warn({ reason: notOnSql }, 'revert refused: Chef does not serve this org from SQL; nothing was changed');
      return { outcome: 'refused' };
    }
    await tracker.markReverting(ctx.db, M, orgId, runId);
    // Dark while it is compared and moved, so no request sees half of it; then
    // the drain wait, so writes in flight to SQL land before the comparison.
    await mine();
    await ctx.darklaunch.setOrgDown(orgName, true);
    await sleep((await getSettings(ctx.db)).drainWaitMs);

    const cmp = await compareOrg(ctx, orgId);
    let writtenBack = 0;
    if (cmp.differences.length) {
      const cannot = cmp.differences.filter((d) => d.change === 'authz_differs');
      if (!writeBackAsked || cannot.length) {
        const why = cannot.length
          ? `${cannot.length} objects have another authz id in SQL than in CouchDB, which cannot be written back`
          : 'writeBack was not asked for';
        await refuse(ctx, orgId, orgName, `${cmp.differences.length} changes made on SQL since the migration would be lost; ${why}`, cmp.differences, runId);
        log.warn({ differences: cmp.differences.length }, 'revert refused: the org changed on SQL since it migrated; it stays on SQL');
        return { outcome: 'refused', differences: cmp.differences };
      }
      writtenBack = await writeBack(ctx, { name: orgName, guid: orgId }, cmp);
      const again = await compareOrg(ctx, orgId);
      // E.g. a duplicate name the migration skipped shows up once the kept document is renamed: this org's data, not the fleet's.
      if (again.differences.length)
        throw new OrgDataError(`after writing back, ${again.differences.length} differences remain between SQL and CouchDB`, {
          differences: again.differences,
        });
      log.info({ written_back: writtenBack, differences: cmp.differences.length }, 'changes made on SQL written back to CouchDB');
    }

    await mine();
    await ctx.darklaunch.routeOrg(orgName, true);
    try {
      reverted = await inTransaction(ctx.db, async (c) => {
        if (!(await tracker.revertOrg(c, M, orgId, taken.lease.owner))) return false;
        await deleteOwnedOrgObjects(c, M, orgId);
        await runs.countOnce(c, runId, `result:${orgId}`, { finished: 1 });
        await reverts.recordResult(c, { runId, orgName, outcome: 'reverted', writtenBack, differences: cmp.differences });
        return true;
      });
    } catch (err) {
      // Its COMMIT's answer lost: whether it reverted is read back, or the
      // put-back below would route a reverted org (no rows left in SQL) to SQL.
      if (err instanceof OutcomeUnknownError) {
        try {
          reverted = !(await reverts.isCompleted(ctx.db, orgId));
        } catch (readErr) {
          unknown = true;
          log.error({ err: errorMessage(readErr) }, 'could not read back whether the revert committed; the org stays dark with its mark for the reconciler');
        }
      }
      // Classified as migrate classifies its write: a constraint or data exception is this org's, anything else the database's.
      throw classifyPgError(err, 'revert in SQL');
    }
    if (!reverted) {
      await mine(); // not reverted because another took the org over: its flags are the other's now
      await ctx.darklaunch.routeOrg(orgName, false); // it moved on meanwhile: leave its routing as it was
    }
    await ctx.darklaunch.setOrgDown(orgName, false);
    // Cleared only once the org is up: until then the reconciler can finish what this job could not.
    await tracker.clearRevertMark(ctx.db, M, orgId);
    log.info({ reverted, written_back: writtenBack }, reverted ? 'org reverted to CouchDB' : 'org no longer completed; left as it was');
    return { outcome: reverted ? 'reverted' : 'skipped', writtenBack };
  } catch (err) {
    if (err instanceof LeaseLostError) {
      log.warn('revert stalled past its org lease and another took the org over; this one stops, touching nothing');
      return { outcome: 'skipped' };
    }
    if (unknown) {
      // Putting it back either way could serve it from where its rows are not: the reconciler reads its state once Postgres answers.
      await tripOnFault(ctx, log, type, runId, `revert of ${orgName}: ${errorMessage(err)}`);
      throw err;
    }
    log.error({ err: errorMessage(err), reverted }, 'revert failed; putting the org back as it was');
    // Not reverted: it stays completed, so it must stay routed to SQL, and up.
    // Reverted (committed, counted): it only has to come up again.
    const putBack = async () => {
      if (!reverted) await ctx.darklaunch.routeOrg(orgName, false);
      await ctx.darklaunch.setOrgDown(orgName, false);
      await tracker.clearRevertMark(ctx.db, M, orgId);
      if (!reverted) {
        await reverts.recordResult(ctx.db, { runId, orgName, outcome: 'failed', detail: errorMessage(err) });
        await runs.countOnce(ctx.db, runId, `result:${orgId}`, { finished: 1, failed: 1 });
      }
    };
    try {
      await putBack();
    } catch (e) {
      // A store is down: the reconciler puts the org back (its mark is still set).
      log.error({ err: errorMessage(e) }, 'could not put the org back yet; the reconciler will');
    }
    if (!isDataError(err)) await tripOnFault(ctx, log, type, runId, `revert of ${orgName}: ${errorMessage(err)}`);
    throw err;
  } finally {
    try {
      await runs.finishRunIfDone(ctx.db, runId);
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'could not end the run yet; the reconciler will');
    }
    await taken.lease.release();
  }
}

/** Refused before anything of the org changed: only the result is recorded. */
async function refuseUntouched(ctx: Context, orgId: string, orgName: string, detail: string, runId: string) {
  await inTransaction(ctx.db, async (c) => {
    await reverts.recordResult(c, { runId, orgName, outcome: 'refused', detail });
    await runs.countOnce(c, runId, `result:${orgId}`, { finished: 1, failed: 1 });
  });
}

/** The org stays completed, on SQL and up; what differs is on the record. */
async function refuse(ctx: Context, orgId: string, orgName: string, detail: string, differences: Difference[], runId: string) {
  await ctx.darklaunch.setOrgDown(orgName, false);
  await tracker.clearRevertMark(ctx.db, M, orgId);
  await inTransaction(ctx.db, async (c) => {
    await reverts.recordResult(c, { runId, orgName, outcome: 'refused', differences, detail });
    await runs.countOnce(c, runId, `result:${orgId}`, { finished: 1, failed: 1 });
  });
}

/**
 * For the reconciler: an org whose revert job was lost mid-way (its mark is
 * set, its job is not live). Still completed: put back as it was, routed to
 * SQL and up. Already reverted (ready): routed to CouchDB and brought up.
 */
async function restoreLostReverts(ctx: Context, jobState: (jobId: string) => Promise<JobState>): Promise<string[]> {
  const restored: string[] = [];
  for (const r of await reverts.markedReverts(ctx.db)) {
    const runId = r.current_step.slice('revert:'.length);
    if (isLive(await jobState(orgJobId(runId, r.org_id)))) continue;
    const taken = await takeOrgLease(ctx, M, r.org_id, r.org_name);
    if (!taken) continue;
    try {
      const state = await reverts.markedState(ctx.db, r.org_id, r.current_step);
      if (!state) continue;
      await ctx.darklaunch.routeOrg(r.org_name, state === 'ready');
      await ctx.darklaunch.setOrgDown(r.org_name, false);
      await tracker.clearRevertMark(ctx.db, M, r.org_id);
      orgLogger(ctx.log, r.org_name, type).warn(
        { run_id: runId, state },
        state === 'ready'
          ? 'revert job was lost after it reverted the org; org routed to CouchDB and up'
          : 'revert job was lost; org left completed, routed to SQL and up',
      );
      restored.push(r.org_name);
    } finally {
      await taken.lease.release();
    }
  }
  return restored;
}
