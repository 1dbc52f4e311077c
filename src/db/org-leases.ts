// The org lease's statements (migrations/007_org_leases.sql; the keeper that
// renews them is src/frame/org-lease.ts). A lease is free when it has no
// owner or its time has passed; its owner may always take it again.
import type { Db } from '../stores/postgres.js';
import { COLUMNS, getOrgStateById, JOINED, type OrgStateRow } from './org-states.js';

/**
 * Takes the org's lease for `owner` and, in the same round trip, reads the
 * org as it stands (null if it is not in the state tracker).
 */
export async function takeLease(
  db: Db,
  type: string,
  orgId: string,
  orgName: string,
  owner: string,
  ms: number,
): Promise<{ leased: boolean; org: OrgStateRow | null }> {
  const { rows } = await db.query({
    name: 'take-org-lease',
    text: `WITH l AS (
       INSERT INTO mover.org_progress AS p (migration_type, org_id, org_name, lease_owner, lease_until)
       VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
       ON CONFLICT (migration_type, org_id) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until
       WHERE p.lease_owner IS NULL OR p.lease_owner = EXCLUDED.lease_owner OR p.lease_until < now()
       RETURNING p.state AS now_state, p.run_id::text AS now_run_id, p.requeues AS now_requeues, p.current_step AS now_step)
     SELECT EXISTS (SELECT 1 FROM l) AS leased, (SELECT to_jsonb(l) FROM l) AS now, o.* FROM (SELECT 1) one
     LEFT JOIN (SELECT ${COLUMNS} FROM ${JOINED} WHERE s.migration_type = $1 AND s.org_id = $2) o ON true`,
    values: [type, orgId, orgName, owner, ms],
  });
  const { leased, now, ...org } = rows[0];
  if (!leased) return { leased, org: null };
  // The read above is the statement's snapshot; the lease may have waited for
  // a statement that moved the org (a completion that gave the lease up) and
  // the upsert returns the row as it is now. If they differ, read it again.
  const moved =
    org.org_id &&
    now &&
    (now.now_state !== org.state || now.now_run_id !== org.run_id || now.now_requeues !== org.requeues || now.now_step !== org.current_step);
  if (moved) return { leased, org: await getOrgStateById(db, type, orgId) };
  return { leased, org: org.org_id ? (org as OrgStateRow) : null };
}

/** Moves the given leases' time forward; returns the owners whose leases are still theirs. */
export async function renewLeases(db: Db, owners: string[], ms: number): Promise<Set<string>> {
  const { rows } = await db.query({
    name: 'renew-org-leases',
    text: `UPDATE mover.org_progress SET lease_until = now() + $2 * interval '1 millisecond' WHERE lease_owner = ANY($1) RETURNING lease_owner`,
    values: [owners, ms],
  });
  return new Set(rows.map((r) => r.lease_owner as string));
}

export async function releaseLease(db: Db, type: string, orgId: string, owner: string): Promise<void> {
  await db.query({
    name: 'release-org-lease',
    text: `UPDATE mover.org_progress SET lease_owner = NULL, lease_until = NULL WHERE migration_type = $1 AND org_id = $2 AND lease_owner = $3`,
    values: [type, orgId, owner],
  });
}
