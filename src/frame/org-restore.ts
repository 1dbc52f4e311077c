// How a per-org migration that failed is put back (docs/architecture.md, "The
// per-org frame"): before the committed step, restored (served from where it
// was, up again) and ended where its migration's failures rest (a migration:
// failed at its step; a revert: back at completed); from the committed step
// on, left in flight to be finished, never moved back. A refusal (OrgRefusal)
// takes the same way back, recorded as refused rather than failed. The one
// put-back path of every per-org migration, for a delivery and the reconciler alike.
import type { Context } from '../context.js';
import { errorMessage, isOrgError, isRefusal, OwnershipLostError } from '../errors.js';
import { inTransaction } from '../stores/postgres.js';
import * as runs from '../db/runs.js';
import * as tracker from '../db/state-tracker.js';
import { checkFailureBreaker, tripOnFault } from './breaker.js';
import { darkMs, fencedOrg, recallDark } from './held-org.js';
import type { OrgJobOutcome, OrgMigration, OrgDelivery } from './org.js';
import { orgDarkSeconds } from '../metrics.js';

/**
 * Puts the org back (restore), then ends it (failed, or refused) at `step`,
 * counting it in the run. If restoring itself fails the org stays 'started'
 * and the job fails: the reconciler tries again until the stores answer.
 */
export async function handleStepError(migration: OrgMigration, ctx: Context, org: OrgDelivery, step: string, err: unknown): Promise<OrgJobOutcome> {
  const message = errorMessage(err);
  const refused = isRefusal(err);
  const dataError = isOrgError(err);
  const cause: tracker.FailureCause = refused ? 'refused' : dataError ? 'data' : 'infrastructure';
  if (refused) org.log.warn({ step, reason: message }, 'org refused; putting it back as it was');
  else org.log.error({ step, err: message, error_kind: cause }, 'org failed; restoring it');
  try {
    // Put back first: the org is dark until this is done.
    const found = refused ? (err as { detail?: Record<string, unknown> }).detail : undefined;
    await restoreAndRecordFailure(migration, ctx, org, step, message, cause, found);
    if (!dataError) await tripOnFault(ctx, org.log, migration.type, org.runId, `${org.orgName} at ${step}: ${message}`);
  } catch (restoreErr) {
    if (restoreErr instanceof OwnershipLostError) {
      // Another delivery or the reconciler holds the org now, or it moved on: theirs to finish. The stores refused this one's writes.
      org.log.warn({ step, err: restoreErr.message }, "org no longer this delivery's to restore; left to whoever holds it");
      return { outcome: 'skipped', step, reason: "the org is no longer this delivery's" };
    }
    org.log.error({ step, err: errorMessage(restoreErr) }, 'could not restore the org yet; the reconciler will retry');
    await tripOnFault(ctx, org.log, migration.type, org.runId, `restore of ${org.orgName} failed: ${errorMessage(restoreErr)}`);
    throw restoreErr;
  }
  if (dataError && !refused) await checkFailureBreaker(ctx, org.log, migration.type, org.runId);
  try {
    await runs.finishRunIfDone(ctx.db, org.runId);
  } catch (e) {
    org.log.warn({ err: errorMessage(e) }, 'could not end the run yet; the reconciler will');
  }
  if (refused) return { outcome: 'refused', step, reason: message };
  return { outcome: 'failed', step, reason: message, errorClass: dataError ? 'data' : 'infrastructure' };
}

/** A committed org that failed: left in flight at its step for the next delivery or the reconciler to finish; a store error opens the run's breaker. */
export async function leaveCommitted(migration: OrgMigration, ctx: Context, org: OrgDelivery, step: string, err: unknown): Promise<never> {
  org.log.error({ step, err: errorMessage(err) }, 'org is committed to its new home; left in flight to be finished, not restored');
  if (!isOrgError(err)) await tripOnFault(ctx, org.log, migration.type, org.runId, `${org.orgName} at ${step}: ${errorMessage(err)}`);
  throw err;
}

/**
 * Restores the org and ends it where the migration's failures rest, in one
 * transaction, with the migration's own record of it. Fenced: the transaction
 * first holds the org (its lease, run and generation, and its state row
 * locked, still started), so one that completed meanwhile keeps its new
 * routing and one another delivery took over is left to it; either raises
 * OwnershipLostError and nothing is written. The flags go back under the
 * lease's epoch too.
 */
export async function restoreAndRecordFailure(
  migration: OrgMigration,
  ctx: Context,
  org: OrgDelivery,
  step: string,
  detail: string,
  cause: tracker.FailureCause,
  found?: Record<string, unknown>,
): Promise<void> {
  await inTransaction(ctx.db, async (c) => {
    await tracker.holdStartedOrg(c, fencedOrg(org));
    // Served from where it was and up again before the state says failed; if this
    // write fails the transaction rolls back and the org stays 'started' for a retry.
    if (migration.restoreOutside) {
      await recallDark(ctx, org);
      await migration.restoreOutside(ctx, org);
      if (org.darkSince !== undefined) org.darkUntil = Date.now();
    }
    await migration.restore(ctx, org, c);
    // Ended and counted in the run by one statement, still holding the org.
    const dark = darkMs(org);
    const to = migration.path?.failed ?? 'failed';
    await tracker.failOrg(c, fencedOrg(org), { step, detail, cause, darkMs: dark, to });
    await migration.record?.(ctx, org, c, { outcome: cause === 'refused' ? 'refused' : 'failed', step, detail, found });
    if (dark !== null) orgDarkSeconds.observe({ migration_type: org.type, outcome: cause === 'refused' ? 'refused' : 'failed' }, dark / 1000);
  });
}

/**
 * An org its migration's preflight refused before the claim, nothing of it
 * changed: counted once in its run (finished, and failed: it was not moved)
 * with the migration's record, by the holder of its lease; false if this run had
 * already counted it.
 */
export async function refuseUnstarted(migration: OrgMigration, ctx: Context, org: OrgDelivery, detail: string): Promise<boolean> {
  return inTransaction(ctx.db, async (c) => {
    // Fenced: only the lease's holder records the verdict it read (else OwnershipLostError, nothing written).
    await tracker.holdLease(c, org.orgType, org.orgId, org.lease!.token);
    if (!(await runs.countOnce(c, org.runId, `result:${org.orgId}`, { finished: 1, failed: 1 }))) return false;
    await migration.record?.(ctx, org, c, { outcome: 'refused', step: 'preflight', detail });
    return true;
  });
}
