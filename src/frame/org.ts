// The types the per-org frame works with (docs/architecture.md, "The per-org
// frame"): one delivery of an org, the shape of a per-org migration (its
// steps, restore, commit point) and a delivery's outcome. Types only: what
// acts on a held org (its fence, its flags, its dark time) is held-org.ts.
import type { Logger } from 'pino';
import type { Context } from '../context.js';
import type { ClaimGuard, OrgPath } from '../db/state-tracker.js';
import type { DbClient } from '../stores/postgres.js';
import type { OrgLease } from './org-lease.js';
import type { RunSpec } from './kind.js';
import type { FencedOrgFlags } from '../darklaunch.js';

/**
 * One delivery of an org (or one reconciler pass over it): which org, in which
 * run, what it holds the org by once held (holdOrg), and the dark time it saw.
 * Mutable: the frame fills it in as the delivery goes.
 */
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

/** How one delivery of an org ended (what its BullMQ job returns). */
export type OrgJobOutcome =
  | { outcome: 'completed' }
  /** Refused, put back as it was (an OrgRefusal): nothing failed. */
  | { outcome: 'refused'; step: string; reason: string }
  /** Failed at `step` and put back; the error's class says whether the org's data or a store was at fault. */
  | { outcome: 'failed'; step: string; reason: string; errorClass: 'data' | 'infrastructure' }
  /** This delivery did nothing to the org (another holds it, it was not ready, or this run already counted it). */
  | { outcome: 'skipped'; reason: string; step?: string };
