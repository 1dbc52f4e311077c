// What the per-org frame works with (docs/architecture.md, "The per-org
// frame"): the org a delivery acts on, the shape of a per-org migration (its
// steps, restore, commit point) and its outcome, and the org's dark time. The
// frame's other modules (org-job, org-restore, per-org-kind) all build on
// these; this one builds on none of them.
import type { Logger } from 'pino';
import type { Context } from '../context.js';
import type { ClaimGuard, FencedOrg, OrgPath } from '../db/state-tracker.js';
import { startedAtMs } from '../db/org-states.js';
import type { DbClient } from '../stores/postgres.js';
import type { OrgLease } from './org-lease.js';
import type { RunSpec } from './kind.js';
import type { FencedOrgFlags } from '../darklaunch.js';

export interface OrgDelivery {
  /** The kind acting on the org (its queue, its run's type, its metrics). */
  type: string;
  /** Whose org rows it moves: the kind's own type, or another's (a revert moves phase_2_migration's orgs). */
  orgType: string;
  runId: string;
  orgName: string;
  orgId: string;
  log: Logger;
  /** The org lease this delivery or reconciler pass holds: every write it makes for the org carries its token or epoch (holdOrg). */
  lease?: OrgLease;
  /** The claim's generation it holds the org at (org_progress.requeues): with the lease's token, the fence of its SQL writes. */
  generation?: number;
  /** The org's own darklaunch flags, written under the lease's epoch (holdOrg): the only way a step writes them. */
  flags?: FencedOrgFlags;
  /** When the org went dark (ms since the epoch): set by the step whose write took it dark, or by recallDark. */
  darkSince?: number;
  /** When the write that brought it up again landed (the switch, or the restore). */
  darkUntil?: number;
}

/**
 * This delivery or reconciler pass holds the org (docs/architecture.md,
 * "Fencing"): its lease, the generation it claimed or found the org at, and
 * the org's flags fenced by the lease's epoch (raised now, in the background).
 */
export function holdOrg(ctx: Context, org: OrgDelivery, lease: OrgLease, generation: number): void {
  org.lease = lease;
  org.generation = generation;
  org.flags = ctx.darklaunch.fenced(org.orgName, lease.epoch);
}

/** The org as the state tracker's statements name it, with the fence this delivery holds it by (holdOrg first). */
export function fencedOrg(org: OrgDelivery): FencedOrg {
  if (!org.lease || org.generation === undefined) throw new Error(`${org.orgName}: a write for the org before it was held (holdOrg)`);
  return { type: org.orgType, orgId: org.orgId, runId: org.runId, leaseToken: org.lease.token, generation: org.generation };
}

/** The org's fenced flags (holdOrg first). */
export function flagsOf(org: OrgDelivery): FencedOrgFlags {
  if (!org.flags) throw new Error(`${org.orgName}: a darklaunch write for the org before it was held (holdOrg)`);
  return org.flags;
}

/** How long the org was dark, from the write that took it down to the one that brought it up; null if this delivery did not see both. */
export const darkMs = (org: OrgDelivery): number | null =>
  org.darkSince !== undefined && org.darkUntil !== undefined ? Math.max(0, Math.round(org.darkUntil - org.darkSince)) : null;

/**
 * For a delivery or reconciler pass that did not take the org dark itself
 * (it resumes or finishes an org another left): if the org is dark now, it
 * went dark no earlier than its claim, which stands in for the moment, so a
 * lost delivery's dark time is counted, at most a copy too long. Two reads,
 * on these rare paths only.
 */
export async function recallDark(ctx: Context, org: OrgDelivery): Promise<void> {
  if (org.darkSince !== undefined || !(await ctx.darklaunch.orgDown(org.orgName))) return;
  org.darkSince = (await startedAtMs(ctx.db, org.orgType, org.orgId)) ?? Date.now();
}

export interface OrgStep {
  name: string;
  /**
   * Recorded in current_step before it runs: what the reconciler goes by if
   * the job is lost there (each is a commit). The first step is recorded by
   * the claim itself; others only where the reconciler must act differently.
   */
  checkpoint?: boolean;
  run: (ctx: Context, org: OrgDelivery) => Promise<void>;
}

/** How an org's time in a run ended, for a kind that keeps its own record of it (OrgMigration.record). */
export interface OrgEnd {
  outcome: 'done' | 'refused' | 'failed';
  step?: string;
  detail?: string;
  /** What the refusal found (a revert: the differences). */
  found?: Record<string, unknown>;
}

/** A per-org migration: what src/frame/per-org-kind.ts turns into a job kind. */
export interface OrgMigration {
  type: string;
  /** Whose org rows the kind moves; default its own type. */
  orgType?: string;
  /** The state its claim takes an org from, and where the org rests when done or failed; default MIGRATION_PATH (ready → completed | failed). */
  path?: OrgPath;
  /** How its runs take orgs, where a kind differs from a migration (its targets, its pacing, its report). */
  run?: Partial<RunSpec>;
  /**
   * Checks outside Postgres before the org is claimed (nothing changed yet),
   * made before the delivery's lease-and-claim round trip. A data error
   * keeps the org from being claimed and fails it, ready → failed at
   * 'preflight'; an OrgRefusal keeps it from being claimed and leaves it as
   * it was, refused (a revert of an org Chef does not serve from SQL). (An
   * org found elsewhere, a delivery resuming it, say, goes by its state and
   * the verdict is not used.)
   */
  preflight?: (ctx: Context, org: OrgDelivery) => Promise<void>;
  /**
   * The preflight in Postgres, checked inside the claim: the guard's name
   * (ClaimGuard in src/db/state-tracker.ts), and the data error a non-zero
   * count fails the org with, at 'preflight'.
   */
  claimGuard?: { name: ClaimGuard; refusal: (n: number) => Error };
  steps: OrgStep[];
  /**
   * Written in the same transaction as the org's last state change (done,
   * refused or failed): the kind's own record of the org in the run (a
   * revert's mover.revert_results), and, when done, what goes with it (a
   * revert deletes the org's rows). Without it a completion is one statement.
   */
  record?(ctx: Context, org: OrgDelivery, q: DbClient, end: OrgEnd): Promise<void>;
  /** Undoes what the steps may have done, so the org is served as before; must be idempotent. */
  restore(ctx: Context, org: OrgDelivery, q: DbClient): Promise<void>;
  /** Writes outside Postgres that restore needs (darklaunch), done before the SQL part. */
  restoreOutside?(ctx: Context, org: OrgDelivery): Promise<void>;
  /**
   * From this step on the org is committed to where it moved (it may be
   * served from there): a failure no longer restores it, which would lose
   * what was written there since, but leaves it in flight at this step, and
   * the next delivery or the reconciler runs the steps from here again (they
   * must be safe to repeat) and completes it. The step must be a checkpoint.
   */
  committedFrom?: string;
}

export type OrgJobOutcome = { outcome: 'completed' | 'refused' | 'failed' | 'skipped'; step?: string; reason?: string; kind?: 'data' | 'infrastructure' };
