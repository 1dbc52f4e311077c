// The org lease's statements (migrations/007_org_leases.sql; the keeper that
// renews them is src/frame/org-lease.ts). A lease is free when it has no
// leaseToken or its time has passed; its leaseToken may always take it again.
import type { Db } from '../stores/postgres.js';
import { getOrgStateById, type OrgStateRow } from './org-states.js';

/**
 * Takes the org's lease for `leaseToken` (mover.take_lease, src/db/functions.sql)
 * and then reads the org as it stands (null if it is not in the state
 * tracker): read after the take, so never older than what the take waited
 * for. Two round trips, on the reconciler's and a retake's rare paths; a
 * delivery's start takes the lease with its claim (leaseAndClaim). The epoch
 * is the lease's fencing number for the darklaunch Redis.
 */
export async function takeLease(
  db: Db,
  type: string,
  orgId: string,
  orgName: string,
  leaseToken: string,
  ms: number,
): Promise<{ leased: false; org: null } | { leased: true; epoch: number; org: OrgStateRow | null }> {
  const { rows } = await db.query({
    name: 'take-org-lease',
    text: `SELECT mover.take_lease($1, $2, $3, $4, $5)::text AS epoch`,
    values: [type, orgId, orgName, leaseToken, Math.round(ms)],
  });
  if (rows[0].epoch === null) return { leased: false, org: null };
  return { leased: true, epoch: Number(rows[0].epoch), org: await getOrgStateById(db, type, orgId) };
}

/** Moves the given leases' time forward; returns the tokens whose leases are still theirs. */
export async function renewLeases(db: Db, leaseTokens: string[], ms: number): Promise<Set<string>> {
  const { rows } = await db.query({
    name: 'renew-org-leases',
    text: `UPDATE mover.org_progress SET lease_until = now() + $2 * interval '1 millisecond' WHERE lease_owner = ANY($1) RETURNING lease_owner`,
    values: [leaseTokens, ms],
  });
  return new Set(rows.map((r) => r.lease_owner as string));
}

export async function releaseLease(db: Db, type: string, orgId: string, leaseToken: string): Promise<void> {
  await db.query({
    name: 'release-org-lease',
    text: `UPDATE mover.org_progress SET lease_owner = NULL, lease_until = NULL WHERE migration_type = $1 AND org_id = $2 AND lease_owner = $3`,
    values: [type, orgId, leaseToken],
  });
}
