// The frame every per-org migration runs in (docs/architecture.md, "The
// per-org frame"): claim the org (ready → started), walk the migration's steps
// recording each, and on any error put the org back the way the migration says
// (never left dark) and mark it failed at that step (src/frame/org-restore.ts).
// A data error fails only that org; anything else opens the run's breaker,
// which pauses the run until the stores answer (src/frame/breaker.ts).
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
import { darkMs, holdOrg, fencedOrg, recallDark } from './held-org.js';
import type { OrgJobOutcome, OrgMigration, OrgDelivery } from './org.js';

export type { OrgEnd, OrgJobOutcome, OrgMigration, OrgDelivery, OrgStep } from './org.js';
import { checkFailureBreaker, tripOnFault } from './breaker.js';
import { handleStepError, leaveCommitted, refuseUnstarted } from './org-restore.js';
import { orgDarkSeconds, orgDuration, orgsFinished, stepDuration } from '../metrics.js';

/** How long a job whose claim found the fleet at its concurrency waits before it asks again. */
export const AT_CAPACITY_RETRY_MS = 1000;
/** How long a job whose run's breaker is open waits before it asks again. */
export const BREAKER_RETRY_MS = 2000;

const pathOf = (migration: OrgMigration): OrgPath => migration.path ?? MIGRATION_PATH;

export async function runOrgJob(migration: OrgMigration, ctx: Context, job: Job<OrgJobData>, token: string | undefined): Promise<OrgJobOutcome> {
  const { runId, orgName, orgId } = job.data;
  const org: OrgDelivery = {
    type: migration.type,
    orgType: migration.orgType ?? migration.type,
    runId,
    orgName,
    orgId,
    log: orgLogger(ctx.log, orgName, migration.type).child({ run_id: runId }),
  };
  let start: DeliveryStart | null;
  try {
    // The preflight first (it changes nothing); then the lease, the org's state and the claim in one round trip.
    const refusal = await preflightRefusal(migration, ctx, org);
    const ask = { firstStep: migration.steps[0].name, from: pathOf(migration).from, refused: refusal !== undefined, guard: migration.claimGuard?.name };
    const got = await takeOrgLeaseAndClaim(ctx, org, ask);
    start = got && { ...got, refusal };
  } catch (err) {
    return claimFailed(migration, ctx, org, err, job, token);
  }
  if (!start) {
    org.log.warn('another delivery of this org is running; this one stands aside');
    return { outcome: 'skipped', reason: 'another delivery is running this org' };
  }
  org.lease = start.lease;
  const started = Date.now();
  try {
    const result = await runSteps(migration, ctx, job, token, org, start);
    if (result.outcome !== 'skipped') {
      orgDuration.observe({ migration_type: migration.type, outcome: result.outcome }, (Date.now() - started) / 1000);
      const failed = result.outcome === 'failed' ? result : undefined;
      const step = result.outcome === 'completed' ? '' : (result.step ?? '');
      orgsFinished.inc({ migration_type: migration.type, outcome: result.outcome, fail_location: step, kind: failed?.errorClass ?? '' });
    }
    return result;
  } finally {
    await start.lease.release();
  }
}

/**
 * Before each step: the delivery still owns its org. If its process could
 * not confirm the lease (renewals failed past its time, or the event loop
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
  migration: OrgMigration,
  ctx: Context,
  job: Job<OrgJobData>,
  token: string | undefined,
  org: OrgDelivery,
  taken: DeliveryStart,
): Promise<OrgJobOutcome> {
  let claim: Claim;
  try {
    claim = await claimOrResume(migration, ctx, org, taken);
  } catch (err) {
    if (err instanceof OwnershipLostError) return standAside(org, 'claim', err);
    return claimFailed(migration, ctx, org, err, job, token);
  }
  switch (claim.next) {
    case 'wait':
      // As many orgs as the concurrency are in flight (some perhaps from a worker
      // that died), or the run is paused by its breaker: this org waits outside,
      // not dark, holding no slot.
      org.log.debug({ reason: claim.reason }, 'org waits to be claimed');
      await job.moveToDelayed(Date.now() + (claim.reason === 'at_capacity' ? AT_CAPACITY_RETRY_MS : BREAKER_RETRY_MS), token);
      throw new DelayedError();
    case 'finished':
      // A job delivered again (Redis lost that it had finished, or it stalled) for an org this run already counted (or refused).
      return { outcome: 'skipped', reason: 'org already finished in this run' };
    case 'skip':
      await runs.countOnce(ctx.db, org.runId, `skip:${org.orgId}`, { skipped: 1 });
      await runs.finishRunIfDone(ctx.db, org.runId);
      return { outcome: 'skipped', reason: 'org not ready for this run (held, already done, or the run halted)' };
    case 'ended':
      return claim.outcome;
    case 'run':
      return runClaimed(migration, ctx, org, taken, claim);
  }
}

/** The org is this delivery's (claimed now, or resumed): its steps, and on an error its restore. */
async function runClaimed(
  migration: OrgMigration,
  ctx: Context,
  org: OrgDelivery,
  taken: DeliveryStart,
  claim: Claim & { next: 'run' },
): Promise<OrgJobOutcome> {
  holdOrg(ctx, org, taken.lease, claim.generation);
  // Resumed: an earlier delivery may have taken it dark.
  if (claim.resumedAt) await recallDark(ctx, org);
  // A delivery that finds its org committed (an earlier one got that far) only finishes it.
  const from = claim.resumedAt && claim.resumedAt === migration.committedFrom ? committedIndex(migration) : 0;
  let step = 'start';
  try {
    return await runFrom(migration, ctx, org, from, (s) => (step = s), true);
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
    if (isCommitted(migration, step)) return leaveCommitted(migration, ctx, org, step, err);
    return handleStepError(migration, ctx, org, step, err);
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
async function claimFailed(
  migration: OrgMigration,
  ctx: Context,
  org: OrgDelivery,
  err: unknown,
  job: Job<OrgJobData>,
  token: string | undefined,
): Promise<never> {
  org.log.error({ step: 'claim', err: errorMessage(err) }, 'could not claim the org; the run pauses');
  await tripOnFault(ctx, org.log, migration.type, org.runId, `claim of ${org.orgName}: ${errorMessage(err)}`);
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

const committedIndex = (migration: OrgMigration) => migration.steps.findIndex((s) => s.name === migration.committedFrom);
const isCommitted = (migration: OrgMigration, step: string) =>
  migration.committedFrom !== undefined && (step === 'complete' || migration.steps.findIndex((s) => s.name === step) >= committedIndex(migration));

/** The migration's steps from index `from`, then started → completed. Every write it makes for the org is fenced (fencedOrg, org.flags). */
async function runFrom(
  migration: OrgMigration,
  ctx: Context,
  org: OrgDelivery,
  from: number,
  at: (step: string) => void,
  delivery = false,
): Promise<OrgJobOutcome> {
  for (let i = from; i < migration.steps.length; i++) {
    const s = migration.steps[i];
    at(s.name);
    // Cheap, and saves a step's work; the stores refuse a stale write all the same.
    if (delivery) await checkOwnership(ctx, org);
    if (s.checkpoint && i > 0) await tracker.setStep(ctx.db, fencedOrg(org), s.name);
    org.log.debug({ step: s.name }, 'step');
    const timer = stepDuration.startTimer({ migration_type: migration.type, step: s.name });
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
  const done = migration.record
    ? // The migration's record (and what goes with it) in the same transaction as the state change, which holds the org.
      await inTransaction(ctx.db, async (c) => {
        const moved = await tracker.completeOrg(c, key, dark, pathOf(migration).done);
        await migration.record!(ctx, org, c, { outcome: 'done' });
        return moved;
      })
    : await tracker.completeOrg(ctx.db, key, dark, pathOf(migration).done);
  if (dark !== null) orgDarkSeconds.observe({ migration_type: migration.type, outcome: 'completed' }, dark / 1000);
  org.lease?.handedOver();
  org.log.info({ state: pathOf(migration).done }, 'org done');
  try {
    if (done.runMayBeDone) await runs.finishRunIfDone(ctx.db, org.runId);
  } catch (err) {
    // The org is completed; the run's end is the reconciler's to notice then.
    org.log.warn({ err: errorMessage(err) }, 'could not end the run yet; the reconciler will');
  }
  return { outcome: 'completed' };
}

/** For the reconciler: finishes a committed org whose job was lost (its steps from the committed one, then completion). */
export async function finishCommitted(migration: OrgMigration, ctx: Context, org: OrgDelivery): Promise<OrgJobOutcome> {
  await recallDark(ctx, org);
  return runFrom(migration, ctx, org, committedIndex(migration), () => {});
}

/**
 * Where this delivery stands, from what its lease-and-claim found. An org its
 * run already started (a stalled job delivered again) is resumed: from the
 * first step, every step being safe to repeat, or finished if it was
 * committed. A ready org was claimed, ready → started, through the
 * concurrency gate, unless the migration's preflight refused it: then it is
 * failed, nothing of it changed.
 */
type Claim =
  /** The org is this delivery's to run: claimed now (ready → started) at `generation`, or resumed at the step an earlier delivery recorded. */
  | { next: 'run'; generation: number; resumedAt?: string }
  /** The fleet is at its concurrency, or the run's breaker is open: the job waits outside and asks again. */
  | { next: 'wait'; reason: 'at_capacity' | 'breaker_open' }
  /** This run already counted the org (a job delivered again). */
  | { next: 'finished' }
  /** The org is not where this run takes orgs from (held, done, or its run halted). */
  | { next: 'skip' }
  /** The claim itself ended the org's time in the run (its preflight failed or refused it), or another delivery took it. */
  | { next: 'ended'; outcome: OrgJobOutcome };

const SKIP: Claim = { next: 'skip' };
const FINISHED: Claim = { next: 'finished' };

/** What the delivery's start found (takeOrgLeaseAndClaim), with its preflight's refusal. */
type DeliveryStart = NonNullable<Awaited<ReturnType<typeof takeOrgLeaseAndClaim>>> & { refusal?: { message: string; refused: boolean } };

async function claimOrResume(migration: OrgMigration, ctx: Context, org: OrgDelivery, taken: DeliveryStart): Promise<Claim> {
  const cur = taken.org;
  const path = pathOf(migration);
  const mine = alreadyMine(cur, org, path);
  if (mine) return mine;
  if (cur?.state !== path.from) {
    org.log.info({ state: cur?.state ?? 'absent' }, 'org skipped: not where this run takes orgs from');
    return SKIP;
  }
  let refusal =
    taken.guardCount > 0 && migration.claimGuard ? { message: errorMessage(migration.claimGuard.refusal(taken.guardCount)), refused: false } : undefined;
  if (refusal === undefined && taken.refusal !== undefined) {
    // Read before the lease: whoever held it then (a revert putting the org back) may have changed what it read. Asked again, now under the lease.
    refusal = await preflightRefusal(migration, ctx, org);
    if (refusal === undefined) {
      org.log.info('the preflight passes now (the org changed while it was first read); claiming it');
      const again = await taken.claimAgain();
      // The lease lapsed meanwhile and another delivery holds it: the org is that delivery's.
      if (!again) return { next: 'ended', outcome: { outcome: 'skipped', reason: 'another delivery took the org lease' } };
      return claimOrResume(migration, ctx, org, { ...taken, ...again, refusal: undefined });
    }
  }
  const claim = taken.claim;
  if (!claim.claimed && claim.reason === 'finished') return FINISHED;
  if (refusal !== undefined) return preflightFailed(migration, ctx, org, refusal, claim.claimed || claim.reason !== 'run_not_working');
  if (claim.claimed) {
    org.log.info('org started');
    // The claim keeps the generation when the run took the org, else starts it at 0.
    return { next: 'run', generation: cur.run_id === org.runId ? cur.requeues : 0 };
  }
  if (claim.reason === 'at_capacity' || claim.reason === 'breaker_open') return { next: 'wait', reason: claim.reason };
  // The org moved between the statement's read and its claim (another statement changed it): read it again.
  const again = await readBack(ctx, org, path);
  if (again) return again;
  org.log.info({ reason: claim.reason }, 'org skipped: not ready for this run');
  return SKIP;
}

/**
 * The preflight kept the org from being claimed, nothing of it changed: a
 * data error fails it (ready → failed at 'preflight'); a refusal leaves it
 * where it is, refused, counted in the run once. Only while the run works.
 */
async function preflightFailed(
  migration: OrgMigration,
  ctx: Context,
  org: OrgDelivery,
  refusal: { message: string; refused: boolean },
  working: boolean,
): Promise<Claim> {
  if (refusal.refused) {
    if (!working || !(await refuseUnstarted(migration, ctx, org, refusal.message))) return SKIP;
    org.log.warn({ step: 'preflight', reason: refusal.message }, 'org refused by its preflight; nothing was changed');
    await runs.finishRunIfDone(ctx.db, org.runId);
    return { next: 'ended', outcome: { outcome: 'refused', step: 'preflight', reason: refusal.message } };
  }
  const key = { type: org.orgType, orgId: org.orgId, runId: org.runId, leaseToken: org.lease!.token };
  if (!(await tracker.failUnstarted(ctx.db, key, 'preflight', refusal.message))) return (await readBack(ctx, org, pathOf(migration))) ?? SKIP;
  org.log.error({ step: 'preflight', err: refusal.message, error_kind: 'data' }, 'org failed its preflight; nothing was changed');
  await checkFailureBreaker(ctx, org.log, migration.type, org.runId);
  await runs.finishRunIfDone(ctx.db, org.runId);
  return { next: 'ended', outcome: { outcome: 'failed', step: 'preflight', reason: refusal.message, errorClass: 'data' } };
}

/** The migration's preflight verdict: undefined if it passed; the data error's message (and whether it is a refusal) if it kept the org back; any other error is thrown. */
async function preflightRefusal(migration: OrgMigration, ctx: Context, org: OrgDelivery): Promise<{ message: string; refused: boolean } | undefined> {
  if (!migration.preflight) return undefined;
  try {
    await migration.preflight(ctx, org);
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
function alreadyMine(cur: OrgStanding | null, org: OrgDelivery, path: OrgPath): Claim | null {
  if (cur?.run_id !== org.runId) return null;
  if (cur.state === 'started') {
    org.log.warn({ step: cur.current_step }, 'job delivered again for a started org; resuming it');
    return { next: 'run', resumedAt: cur.current_step ?? undefined, generation: cur.requeues };
  }
  if ((cur.state === path.done || cur.state === path.failed) && cur.state !== path.from) {
    org.log.warn({ state: cur.state }, 'job delivered again for an org this run already finished; nothing to do');
    return FINISHED;
  }
  return null;
}

const readBack = async (ctx: Context, org: OrgDelivery, path: OrgPath) => alreadyMine(await getOrgStateById(ctx.db, org.orgType, org.orgId), org, path);
