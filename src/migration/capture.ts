// Capture (legacy insert_one_org, for a list of names): each named org of the
// account snapshot is inserted into the state tracker as 'holding'. The one
// capture behind POST /migrations/:type/orgs and phase 1's step 1.2; the prep
// pass captures whole batches from the snapshot with the same insert.
import { lookupOrgs } from '../db/account-snapshot.js';
import { insertOrgs } from '../db/state-tracker.js';
import type { Db } from '../stores/postgres.js';

export interface Capture {
  inserted: string[];
  /** Already captured for this migration type (legacy 23505). */
  duplicate: string[];
  /** Not in the account snapshot. */
  unknown: string[];
  /** Pre-created orgs: never captured, the runbook deletes them out of band (step 2.3). */
  precreated: string[];
}

export async function captureOrgs(db: Db, type: string, names: string[]): Promise<Capture> {
  const unique = [...new Set(names)];
  const known = await lookupOrgs(db, unique);
  const capturable = unique.flatMap((n) => {
    const o = known.get(n);
    return o && !o.precreated ? [{ name: o.name, guid: o.guid }] : [];
  });
  const { inserted, duplicate } = await insertOrgs(db, type, capturable);
  return { inserted, duplicate, unknown: unique.filter((n) => !known.has(n)), precreated: unique.filter((n) => known.get(n)?.precreated) };
}
