// The frame every per-org job kind runs in: claim the org (ready → started),
// walk the kind's steps recording each, and on any error put the org back the
// way the kind says (never left dark) and mark it failed at that step. A data
// error fails only that org; anything else halts the run fleet-wide.
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Context } from '../context.js';
import { errorMessage, isDataError } from '../errors.js';
import { orgLogger } from '../log.js';
import type { OrgJobData } from '../queues.js';
import { inTransaction } from '../stores/postgres.js';
import * as runs from '../db/runs.js';
import * as tracker from '../db/state-tracker.js';
import { tryLock } from '../db/advisory-lock.js';
import { haltFleet } from './halt.js';

export interface OrgRef {
  type: string;
  runId: string;
  orgName: string;
  orgId: string;
  log: Logger;
}

export interface OrgStep {
  name: string;
  /**
   * Recorded in current_step before it runs: what the reconciler reports if
   * the job is lost there. The first step is recorded by the claim itself, a
   * wait step whenever it parks; other steps only where it is worth a round trip.
   */
  checkpoint?: boolean;
  /** A wait step parks the job (delayed, holding no worker slot) for this long; run() is not called. */
  waitMs?: (ctx: Context) => Promise<number>;
  run?: (ctx: Context, org: OrgRef) => Promise<void>;
}

export interface OrgJobKind {
  type: string;
  steps: OrgStep[];
  /** Undoes what the steps may have done, so the org is served as before; must be idempotent. */
  restore(ctx: Context, org: OrgRef, q: import('../stores/postgres.js').DbClient): Promise<void>;
  /** Writes outside Postgres that restore needs (darklaunch), done before the SQL part. */
  restoreOutside?(ctx: Context, org: OrgRef): Promise<void>;
}

export type OrgJobOutcome = { outcome: 'completed' | 'failed' | 'skipped'; step?: string; reason?: string };

export async function runOrgJob(kind: OrgJobKind, ctx: Context, job: Job<OrgJobData>, token: string | undefined): Promise<OrgJobOutcome> {
  const { runId, orgName, orgId } = job.data;
  const org: OrgRef = { type: kind.type, runId, orgName, orgId, log: orgLogger(ctx.log, orgName, kind.type).child({ run_id: runId }) };
  const lock = await tryLock(ctx.db, kind.type, orgName);
  if (!lock) {
    org.log.warn('another delivery of this org is running; this one stands aside');
    return { outcome: 'skipped', reason: 'another delivery is running this org' };
  }
  try {
    return await runSteps(kind, ctx, job, token, org);
  } finally {
    await lock.release();
  }
}

async function runSteps(kind: OrgJobKind, ctx: Context, job: Job<OrgJobData>, token: string | undefined, org: OrgRef): Promise<OrgJobOutcome> {
  const { runId, orgName } = job.data;
  const from = job.data.resumeFrom ?? 0;
  let claimed: boolean;
  try {
    claimed = await claim(ctx, org, from === 0, kind.steps[0]?.name ?? 'start');
  } catch (err) {
    // Nothing was changed for this org yet; a store that fails here halts the fleet all the same.
    org.log.error({ step: 'claim', err: errorMessage(err) }, 'could not claim the org; halting the run');
    await haltFleet(ctx, kind.type, runId, `claim of ${orgName}: ${errorMessage(err)}`, true).catch(() => {});
    throw err;
  }
  if (!claimed) {
    await runs.countSkipped(ctx.db, runId);
    await runs.finishRunIfDone(ctx.db, runId);
    return { outcome: 'skipped', reason: 'org not ready for this run (held, already done, or the run halted)' };
  }

  let step = 'start';
  try {
    for (let i = from; i < kind.steps.length; i++) {
      const s = kind.steps[i];
      step = s.name;
      if (s.checkpoint && i > 0) await tracker.setStep(ctx.db, kind.type, orgName, runId, step);
      if (s.waitMs) {
        const ms = await s.waitMs(ctx);
        if (ms > 0) {
          await tracker.setStep(ctx.db, kind.type, orgName, runId, step);
          org.log.info({ step, wait_ms: ms }, 'org parked for its drain wait');
          await job.updateData({ ...job.data, resumeFrom: i + 1 });
          await job.moveToDelayed(Date.now() + ms, token);
          throw new DelayedError();
        }
        continue;
      }
      org.log.debug({ step }, 'step');
      await s.run!(ctx, org);
    }
    step = 'complete';
    const done = await tracker.completeOrg(ctx.db, kind.type, orgName, runId);
    if (!done) org.log.warn('org was no longer started by this run when it completed; left as it is');
    else org.log.info('org completed');
    if (!done || done.runMayBeDone) await runs.finishRunIfDone(ctx.db, runId);
    return { outcome: 'completed' };
  } catch (err) {
    if (err instanceof DelayedError) throw err;
    return failOrg(kind, ctx, org, step, err);
  }
}

/** ready → started; or, for a job delivered again (stalled, or back from its wait), still ours. */
async function claim(ctx: Context, org: OrgRef, fresh: boolean, firstStep: string): Promise<boolean> {
  if (fresh && (await tracker.startOrg(ctx.db, org.type, org.orgName, org.runId, firstStep))) {
    org.log.info('org started');
    return true;
  }
  const cur = await tracker.getOrgState(ctx.db, org.type, org.orgName);
  if (cur?.state === 'started' && cur.run_id === org.runId) {
    if (fresh) org.log.warn({ step: cur.current_step }, 'job delivered again for a started org; resuming from the start (steps are idempotent)');
    return true;
  }
  org.log.info({ state: cur?.state ?? 'absent' }, 'org skipped: not ready for this run');
  return false;
}

/**
 * Puts the org back (restore), then started → failed at `step`, counting it
 * in the run. If restoring itself fails the org stays 'started' and the job
 * fails: the reconciler tries again until the stores answer.
 */
export async function failOrg(kind: OrgJobKind, ctx: Context, org: OrgRef, step: string, err: unknown): Promise<OrgJobOutcome> {
  const message = errorMessage(err);
  const dataError = isDataError(err);
  org.log.error({ step, err: message, error_kind: dataError ? 'data' : 'infrastructure' }, 'org failed; restoring it');
  if (!dataError) await haltFleet(ctx, kind.type, org.runId, `${org.orgName} at ${step}: ${message}`, true).catch(() => {});
  try {
    await restoreAndFail(kind, ctx, org, step, message);
  } catch (restoreErr) {
    org.log.error({ step, err: errorMessage(restoreErr) }, 'could not restore the org yet; the reconciler will retry');
    await haltFleet(ctx, kind.type, org.runId, `restore of ${org.orgName} failed: ${errorMessage(restoreErr)}`, true).catch(() => {});
    throw restoreErr;
  }
  await runs.finishRunIfDone(ctx.db, org.runId).catch(() => {});
  return { outcome: 'failed', step, reason: message };
}

export async function restoreAndFail(kind: OrgJobKind, ctx: Context, org: OrgRef, step: string, detail: string): Promise<boolean> {
  return inTransaction(ctx.db, async (c) => {
    // Lock the org's row and check it first: an org that completed meanwhile
    // (a job finishing as the reconciler looks) must keep its SQL routing.
    const { rows } = await c.query(
      `SELECT state, run_id FROM org_migration_state WHERE migration_type = $1 AND org_name = $2 FOR UPDATE`,
      [org.type, org.orgName],
    );
    if (rows[0]?.state !== 'started' || String(rows[0].run_id) !== org.runId) return false;
    // Served from CouchDB and up again before the state says failed; if this
    // write fails the transaction rolls back and the org stays 'started' for a retry.
    if (kind.restoreOutside) await kind.restoreOutside(ctx, org);
    await kind.restore(ctx, org, c);
    await tracker.failOrg(c, org.type, org.orgName, org.runId, step, detail);
    await runs.countFinished(c, org.runId, true);
    return true;
  });
}
