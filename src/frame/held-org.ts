// What acts on a held org (docs/architecture.md, "Fencing"): taking hold of
// it (its lease, generation and fenced flags), the fence its SQL writes carry,
// and its dark time. The frame's modules (org-job, org-restore, per-org-kind)
// and the kinds' steps build on these; the types are org.ts.
import type { Context } from '../context.js';
import type { FencedOrg } from '../db/state-tracker.js';
import { startedAtMs } from '../db/org-states.js';
import type { FencedOrgFlags } from '../darklaunch.js';
import type { OrgLease } from './org-lease.js';
import type { OrgDelivery } from './org.js';

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
