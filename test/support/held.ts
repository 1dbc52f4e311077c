// A test's stand-in for a delivery: the org's lease taken as a delivery takes
// it (src/frame/org-lease.ts), the org claimed under it, and the key or
// OrgDelivery that holds it (its fence: docs/architecture.md, "Fencing"). Every
// write for an org in flight needs one; a test that plays a lost delivery
// gives the lease up (lapse) so the reconciler or a new delivery may take it.
import type { Context } from '../../src/context.js';
import { releaseLease, takeLease } from '../../src/db/org-leases.js';
import * as tracker from '../../src/db/state-tracker.js';
import type { ClaimResult, FencedOrg, OrgPath } from '../../src/db/state-tracker.js';
import { takeOrgLease } from '../../src/frame/org-lease.js';
import { holdOrg } from '../../src/frame/held-org.js';
import type { OrgDelivery } from '../../src/frame/org.js';
import type { Db } from '../../src/stores/postgres.js';

const orgNameOf = async (db: Db, type: string, orgId: string): Promise<string> =>
  (await db.query(`SELECT org_name FROM org_migration_state WHERE migration_type = $1 AND org_id = $2`, [type, orgId])).rows[0]?.org_name ?? orgId;

const generationOf = async (db: Db, type: string, orgId: string): Promise<number> =>
  Number((await db.query(`SELECT requeues FROM mover.org_progress WHERE migration_type = $1 AND org_id = $2`, [type, orgId])).rows[0]?.requeues ?? 0);

let leaseTokens = 0;
/** A lease token of the test's own. */
export const testLeaseToken = () => `test:${process.pid}:${++leaseTokens}`;

/**
 * Takes the org's lease for `leaseToken` (a new token unless given) and claims the
 * org under it, as a delivery's start does (one statement); the claim's
 * answer, and the key that holds the org at its generation now.
 */
export async function claimHeld(
  db: Db,
  org: { type: string; orgId: string; runId: string },
  opts: { firstStep?: string; from?: OrgPath['from']; leaseToken?: string } = {},
): Promise<{ claim: ClaimResult; leased: boolean; key: FencedOrg; epoch: number }> {
  const leaseToken = opts.leaseToken ?? testLeaseToken();
  const r = await tracker.leaseAndClaim(db, org, await orgNameOf(db, org.type, org.orgId), leaseToken, 60_000, {
    firstStep: opts.firstStep ?? 'start',
    from: opts.from ?? 'ready',
    refused: false,
  });
  const key = { ...org, leaseToken, generation: await generationOf(db, org.type, org.orgId) };
  if (!r.leased) return { claim: { claimed: false, reason: 'not_ready' }, leased: false, key, epoch: 0 };
  return { claim: r.claim, leased: true, key, epoch: r.epoch };
}

/** Takes the org's lease alone (no claim), as a purge or a reconciler pass does; its token. */
export async function leaseOnly(db: Db, type: string, orgId: string): Promise<string> {
  const leaseToken = testLeaseToken();
  const r = await takeLease(db, type, orgId, await orgNameOf(db, type, orgId), leaseToken, 60_000);
  if (!r.leased) throw new Error(`${orgId}: its lease is held by another`);
  return leaseToken;
}

/** The stand-in delivery's process died: its lease given up, so the reconciler or a new delivery may take it at once rather than after it lapses. */
export async function lapse(db: Db, key: FencedOrg): Promise<void> {
  await releaseLease(db, key.type, key.orgId, key.leaseToken);
}

/**
 * An OrgDelivery held as a delivery holds it, on a real lease of `ctx`'s process
 * (renewed by its keeper), with its flags fenced by the lease's epoch: for a
 * test that runs a kind's steps by hand. Claims the org first unless `claim`
 * is false (it is started by the run already).
 */
export async function heldRef(
  ctx: Context,
  org: { type: string; orgType?: string; runId: string; orgName: string; orgId: string },
  opts: { firstStep?: string; from?: OrgPath['from']; claim?: boolean } = {},
): Promise<{ ref: OrgDelivery; claim: ClaimResult | null }> {
  const orgType = org.orgType ?? org.type;
  const taken = await takeOrgLease(ctx, orgType, org.orgId, org.orgName);
  if (!taken) throw new Error(`${org.orgName}: its lease is held by another`);
  const claim =
    opts.claim === false
      ? null
      : await tracker.claimOrg(ctx.db, { type: orgType, orgId: org.orgId, runId: org.runId, leaseToken: taken.lease.token }, opts.firstStep, opts.from);
  const ref: OrgDelivery = { ...org, orgType, log: ctx.log };
  holdOrg(ctx, ref, taken.lease, await generationOf(ctx.db, orgType, org.orgId));
  return { ref, claim };
}
