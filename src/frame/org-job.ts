// The frame every per-org migration runs in (docs/architecture.md, "The
// per-org frame"): claim the org (ready → started), walk the kind's steps
// recording each, and on any error put the org back the way the kind says
// (never left dark) and mark it failed at that step (src/frame/org-restore.ts).
// A data error fails only that org; anything else halts the run fleet-wide.
import { DelayedError, type Job } from 'bullmq';
import type { Context } from '../context.js';
import { errorMessage, isOrgError, isRefusal, OwnershipLostError } from '../errors.js';
import type { OrgJobData } from './kind.js';
import { orgLogger } from '../log.js';
import * as runs from '../db/runs.js';
import * as tracker from '../db/state-tracker.js';
import { MIGRATION_PATH, type OrgPath, type OrgStanding } from '../db/state-tracker.js';
import { inTransaction } from '../stores/postgres.js';
import { getOrgStateById } from '../db/org-states.js';
import { takeOrgLeaseAndClaim } from './org-lease.js';
import { darkMs, holdOrg, fencedOrg, recallDark, type OrgJobOutcome, type OrgMigration, type OrgDelivery } from './org.js';

export type { OrgEnd, OrgJobOutcome, OrgMigration, OrgDelivery, OrgStep } from './org.js';
import { checkFailureBreaker, tripOnFault } from './breaker.js';
import { failAndRestore, leaveCommitted, refuseUnstarted } from './org-restore.js';
import { orgDarkSeconds, orgDuration, orgsFinished, stepDuration } from '../metrics.js';

/** How long a job whose claim found the fleet at its concurrency waits before it asks again. */
export const AT_CAPACITY_RETRY_MS = 1000;
/** How long a job whose run's breaker is open waits before it asks again. */
export const BREAKER_RETRY_MS = 2000;

const pathOf = (kind: OrgMigration): OrgPath => kind.path ?? MIGRATION_PATH;

export async function runOrgJob(kind: OrgMigration, ctx: Context, job: Job<OrgJobData>, token: string | undefined): Promise<OrgJobOutcome> {
  const { runId, orgName, orgId } = job.data;
  const org: OrgDelivery = {
    type: kind.type,
    orgType: kind.orgType ?? kind.type,
    runId,
    orgName,
    orgId,
    log: orgLogger(ctx.log, orgName, kind.type).child({ run_id: runId }),
  };
  let taken: Taken | null;
  try {
    // The preflight first (it changes nothing); then the lease, the org's state and the claim in one round trip.
    const refusal = await preflightRefusal(kind, ctx, org);
    const ask = { firstStep: kind.steps[0].name, from: pathOf(kind).from, refused: refusal !== undefined, guard: kind.claimGuard?.name };
    const got = await takeOrgLeaseAndClaim(ctx, org, ask);
    taken = got && { ...got, refusal };
  } catch (err) {
    return claimFailed(kind, ctx, org, err, job, token);
  }
  if (!taken) {
    org.log.warn('another delivery of this org is running; this one stands aside');
    return { outcome: 'skipped', reason: 'another delivery is running this org' };
  }
  org.lease = taken.lease;
  const started = Date.now();
  try {
    const result = await runSteps(kind, ctx, job, token, org, taken);
    if (result.outcome !== 'skipped') {
      orgDuration.observe({ migration_type: kind.type, outcome: result.outcome }, (Date.now() - started) / 1000);
      orgsFinished.inc({ migration_type: kind.type, outcome: result.outcome, fail_location: result.step ?? '', kind: result.kind ?? '' });
    }
    return result;
  } finally {
    await taken.lease.release();
  }
}

/**
 * Before each step: the delivery still owns its org. If its process could
 * not vouch for the lease (renewals failed past its time, or the event loop
 * stalled past it), the lease is taken again and the org read back: still
 * started by this run at the same generation, nobody acted on it meanwhile,
 * and the delivery goes on.
 */
async function checkOwnership(ctx: Context, org: OrgDelivery): Promise<void> {
  if (!org.lease?.lost) return;
  org.log.warn('the org lease may have lapsed; taking it again');
  const again = await org.lease.retake();
  if (!again) throw new OwnershipLostError('another delivery or the reconciler holds its lease');
  const cur = again.org;
  if (cur?.state !== 'started' || cur.run_id !== org.runId || cur.requeues !== org.generation) {
    throw new OwnershipLostError(`it is ${cur?.state ?? 'absent'} now (run ${cur?.run_id}, generation ${cur?.requeues})`);
  }
  // Another held the lease in between and touched nothing: the flags go by the new epoch.
  if (again.epoch !== org.flags?.epoch) holdOrg(ctx, org, org.lease, org.generation);
}

async function runSteps(
  kind: OrgMigration,
  ctx: Context,
  job: Job<OrgJobData>,
  token: string | undefined,
  org: OrgDelivery,
  taken: Taken,
): Promise<OrgJobOutcome> {
  let claim: Awaited<ReturnType<typeof claimOrResume>>;
  try {
    claim = await claimOrResume(kind, ctx, org, taken);
  } catch (err) {
    if (err instanceof OwnershipLostError) return standAside(org, 'claim', err);
    return claimFailed(kind, ctx, org, err, job, token);
  }
  if (claim === 'at_capacity' || claim === 'breaker_open') {
    // As many orgs as the concurrency are in flight (some perhaps from a worker
    // that died), or the run is paused by its breaker: this org waits outside,
    // not dark, holding no slot.
    org.log.debug({ reason: claim }, 'org waits to be claimed');
    await job.moveToDelayed(Date.now() + (claim === 'at_capacity' ? AT_CAPACITY_RETRY_MS : BREAKER_RETRY_MS), token);
    throw new DelayedError();
  }
  if (claim === 'finished') {
    // A job delivered again (Redis lost that it had finished, or it stalled) for an org this run already counted (or refused).
    return { outcome: 'skipped', reason: 'org already finished in this run' };
  }
  if (claim === 'skip') {
    await runs.countOnce(ctx.db, org.runId, `skip:${org.orgId}`, { skipped: 1 });
    await runs.finishRunIfDone(ctx.db, org.runId);
    return { outcome: 'skipped', reason: 'org not ready for this run (held, already done, or the run halted)' };
  }
  if ('outcome' in claim) return claim;

  holdOrg(ctx, org, taken.lease, claim.generation);
  // Resumed: an earlier delivery may have taken it dark.
  if (claim.resumedAt) await recallDark(ctx, org);
  // A delivery that finds its org committed (an earlier one got that far) only finishes it.
  const from = claim.resumedAt && claim.resumedAt === kind.committedFrom ? committedIndex(kind) : 0;
  let step = 'start';
  try {
    return await runFrom(kind, ctx, org, from, (s) => (step = s), true);
  } catch (err) {
    if (err instanceof OwnershipLostError) return standAside(org, step, err);
    // A delivery that stalled past its lease may fail because another took the org over: then it touches nothing.
    try {
      await checkOwnership(ctx, org);
    } catch (lost) {
      if (lost instanceof OwnershipLostError) return standAside(org, step, lost);
      // The store is away: the restore below is fenced by the lease in SQL all the same.
      org.log.warn({ step, err: errorMessage(lost) }, 'could not confirm the org lease before restoring; the restore checks it itself');
    }
    if (isCommitted(kind, step)) return leaveCommitted(kind, ctx, org, step, err);
    return failAndRestore(kind, ctx, org, step, err);
  }
}

/**
 * A store failed before anything of the org changed (or dl_default stopped
 * being a hash): the run's breaker opens, and the org waits outside for it,
 * as a claim that finds the breaker open does, not dark, holding no slot. If
 * even the queue cannot take the wait (the queue Redis is the store away), the
 * error goes on and the org, still ready, is queued again once its run's
 * queue runs dry (the reconciler's queueLost).
 */
async function claimFailed(kind: OrgMigration, ctx: Context, org: OrgDelivery, err: unknown, job: Job<OrgJobData>, token: string | undefined): Promise<never> {
  org.log.error({ step: 'claim', err: errorMessage(err) }, 'could not claim the org; the run pauses');
  await tripOnFault(ctx, org.log, kind.type, org.runId, `claim of ${org.orgName}: ${errorMessage(err)}`);
  try {
    await job.moveToDelayed(Date.now() + BREAKER_RETRY_MS, token);
  } catch (delayErr) {
    org.log.warn({ err: errorMessage(delayErr) }, 'could not put the job off either; it fails and the reconciler queues the org again');
    throw err;
  }
  throw new DelayedError();
}

function standAside(org: OrgDelivery, step: string, err: OwnershipLostError): OrgJobOutcome {
  org.log.warn({ step, err: err.message }, 'delivery stops; the org is left to whoever owns it now');
  return { outcome: 'skipped', reason: err.message };
}

const committedIndex = (kind: OrgMigration) => kind.steps.findIndex((s) => s.name === kind.committedFrom);
const isCommitted = (kind: OrgMigration, step: string) =>
  kind.committedFrom !== undefined && (step === 'complete' || kind.steps.findIndex((s) => s.name === step) >= committedIndex(kind));

/** The kind's steps from index `from`, then started → completed. Every write it makes for the org is fenced (orgFlagsKey, org.flags). */
async function runFrom(kind: OrgMigration, ctx: Context, org: OrgDelivery, from: number, at: (step: string) => void, delivery = false): Promise<OrgJobOutcome> {
  for (let i = from; i < kind.steps.length; i++) {
    const s = kind.steps[i];
    at(s.name);
    // Cheap, and saves a step's work; the stores refuse a stale write all the same.
    if (delivery) await checkOwnership(ctx, org);
    if (s.checkpoint && i > 0) await tracker.setStep(ctx.db, fencedOrg(org), s.name);
    org.log.debug({ step: s.name }, 'step');
    const timer = stepDuration.startTimer({ migration_type: kind.type, step: s.name });
    try {
      await s.run(ctx, org);
    } finally {
      timer();
    }
  }
  at('complete');
  const dark = darkMs(org);
  const key = fencedOrg(org);
  // The completion gives the lease up: the keeper stops renewing it first (a renewal racing it would take it for lost).
  org.lease?.handingOver();
  const done = kind.record
    ? // The kind's record (and what goes with it) in the same transaction as the state change, which holds the org.
      await inTransaction(ctx.db, async (c) => {
        const moved = await tracker.completeOrg(c, key, dark, pathOf(kind).done);
        await kind.record!(ctx, org, c, { outcome: 'done' });
        return moved;
      })
    : await tracker.completeOrg(ctx.db, key, dark, pathOf(kind).done);
  if (dark !== null) orgDarkSeconds.observe({ migration_type: kind.type, outcome: 'completed' }, dark / 1000);
  org.lease?.handedOver();
  org.log.info({ state: pathOf(kind).done }, 'org done');
  try {
    if (done.runMayBeDone) await runs.finishRunIfDone(ctx.db, org.runId);
  } catch (err) {
    // The org is completed; the run's end is the reconciler's to notice then.
    org.log.warn({ err: errorMessage(err) }, 'could not end the run yet; the reconciler will');
  }
  return { outcome: 'completed' };
}

/** For the reconciler: finishes a committed org whose job was lost (its steps from the committed one, then completion). */
export async function finishCommitted(kind: OrgMigration, ctx: Context, org: OrgDelivery): Promise<OrgJobOutcome> {
  await recallDark(ctx, org);
  return runFrom(kind, ctx, org, committedIndex(kind), () => {});
}

/**
 * Where this delivery stands, from what its lease-and-claim found. An org its
 * run already started (a stalled job delivered again) is resumed: from the
 * first step, every step being safe to repeat, or finished if it was
 * committed. A ready org was claimed, ready → started, through the
 * concurrency gate, unless the kind's preflight refused it: then it is
 * failed, nothing of it changed.
 */
type Claim = { resumedAt?: string; generation: number };

/** What the delivery's start found (takeOrgLeaseAndClaim), with its preflight's refusal. */
type Taken = NonNullable<Awaited<ReturnType<typeof takeOrgLeaseAndClaim>>> & { refusal?: { message: string; refused: boolean } };

async function claimOrResume(
  kind: OrgMigration,
  ctx: Context,
  org: OrgDelivery,
  taken: Taken,
): Promise<Claim | OrgJobOutcome | 'skip' | 'finished' | 'at_capacity' | 'breaker_open'> {
  const cur = taken.org;
  const path = pathOf(kind);
  const mine = alreadyMine(cur, org, path);
  if (mine) return mine;
  if (cur?.state !== path.from) {
    org.log.info({ state: cur?.state ?? 'absent' }, 'org skipped: not where this run takes orgs from');
    return 'skip';
  }
  let refusal = taken.unfit > 0 && kind.claimGuard ? { message: errorMessage(kind.claimGuard.refusal(taken.unfit)), refused: false } : undefined;
  if (refusal === undefined && taken.refusal !== undefined) {
    // Read before the lease: whoever held it then (a revert putting the org back) may have changed what it read. Asked again, now under the lease.
    refusal = await preflightRefusal(kind, ctx, org);
    if (refusal === undefined) {
      org.log.info('the preflight passes now (the org changed while it was first read); claiming it');
      const again = await taken.claimAgain();
      // The lease lapsed meanwhile and another delivery holds it: the org is that delivery's.
      if (!again) return { outcome: 'skipped', reason: 'another delivery took the org lease' };
      return claimOrResume(kind, ctx, org, { ...taken, ...again, refusal: undefined });
    }
  }
  const claim = taken.claim;
  if (!claim.claimed && claim.reason === 'finished') return 'finished';
  if (refusal !== undefined) return preflightFailed(kind, ctx, org, refusal, claim.claimed || claim.reason !== 'run_not_working');
  if (claim.claimed) {
    org.log.info('org started');
    // The claim keeps the generation when the run took the org, else starts it at 0.
    return { generation: cur.run_id === org.runId ? cur.requeues : 0 };
  }
  if (claim.reason === 'at_capacity' || claim.reason === 'breaker_open') return claim.reason;
  // The org moved between the statement's read and its claim (another statement changed it): read it again.
  const again = await readBack(ctx, org, path);
  if (again) return again;
  org.log.info({ reason: claim.reason }, 'org skipped: not ready for this run');
  return 'skip';
}

/**
 * The preflight kept the org from being claimed, nothing of it changed: a
 * data error fails it (ready → failed at 'preflight'); a refusal leaves it
 * where it is, refused, counted in the run once. Only while the run works.
 */
async function preflightFailed(
  kind: OrgMigration,
  ctx: Context,
  org: OrgDelivery,
  refusal: { message: string; refused: boolean },
  working: boolean,
): Promise<OrgJobOutcome | Claim | 'finished' | 'skip'> {
  if (refusal.refused) {
    if (!working || !(await refuseUnstarted(kind, ctx, org, refusal.message))) return 'skip';
    org.log.warn({ step: 'preflight', reason: refusal.message }, 'org refused by its preflight; nothing was changed');
    await runs.finishRunIfDone(ctx.db, org.runId);
    return { outcome: 'refused', step: 'preflight', reason: refusal.message };
  }
  const key = { type: org.orgType, orgId: org.orgId, runId: org.runId, leaseToken: org.lease!.token };
  if (!(await tracker.failUnstarted(ctx.db, key, 'preflight', refusal.message))) return (await readBack(ctx, org, pathOf(kind))) ?? 'skip';
  org.log.error({ step: 'preflight', err: refusal.message, error_kind: 'data' }, 'org failed its preflight; nothing was changed');
  await checkFailureBreaker(ctx, org.log, kind.type, org.runId);
  await runs.finishRunIfDone(ctx.db, org.runId);
  return { outcome: 'failed', step: 'preflight', reason: refusal.message, kind: 'data' };
}

/** The kind's preflight verdict: undefined if it passed; the data error's message (and whether it is a refusal) if it kept the org back; any other error is thrown. */
async function preflightRefusal(kind: OrgMigration, ctx: Context, org: OrgDelivery): Promise<{ message: string; refused: boolean } | undefined> {
  if (!kind.preflight) return undefined;
  try {
    await kind.preflight(ctx, org);
    return undefined;
  } catch (err) {
    if (!isOrgError(err)) throw err;
    return { message: errorMessage(err), refused: isRefusal(err) };
  }
}

/**
 * The org as this run left it: started (resume it) or at rest where this
 * run's orgs end (counted already); null if it is not this run's. An org
 * back where the path starts (a revert's, refused or failed) is the claim's
 * to tell apart: mover.claim_org answers 'finished' for it.
 */
function alreadyMine(cur: OrgStanding | null, org: OrgDelivery, path: OrgPath): Claim | 'finished' | null {
  if (cur?.run_id !== org.runId) return null;
  if (cur.state === 'started') {
    org.log.warn({ step: cur.current_step }, 'job delivered again for a started org; resuming it');
    return { resumedAt: cur.current_step ?? undefined, generation: cur.requeues };
  }
  if ((cur.state === path.done || cur.state === path.failed) && cur.state !== path.from) {
    org.log.warn({ state: cur.state }, 'job delivered again for an org this run already finished; nothing to do');
    return 'finished';
  }
  return null;
}

const readBack = async (ctx: Context, org: OrgDelivery, path: OrgPath) => alreadyMine(await getOrgStateById(ctx.db, org.orgType, org.orgId), org, path);
