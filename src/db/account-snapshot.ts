// The account snapshot (legacy: the dets files). A refresh writes a new
// snapshot beside the current one and swaps the pointer in one transaction,
// so workers see the new data on their next query, with no restart.
import { inTransaction, type Db, type DbClient } from '../stores/postgres.js';

type Q = Db | DbClient;
const CURRENT = '(SELECT snapshot_id FROM mover.account_snapshot_current)';

export interface AccountOrg {
  name: string;
  guid: string;
  precreated: boolean;
}

export async function beginSnapshot(db: Db): Promise<string> {
  const { rows } = await db.query(`INSERT INTO mover.account_snapshots (state) VALUES ('refreshing') RETURNING id`);
  return String(rows[0].id);
}

export async function addOrgs(db: Db, snapshotId: string, orgs: AccountOrg[]): Promise<number> {
  if (!orgs.length) return 0;
  const { rowCount } = await db.query(
    `INSERT INTO mover.account_orgs (snapshot_id, name, guid, precreated)
     SELECT $1, n, g, p FROM unnest($2::text[], $3::text[], $4::bool[]) AS t(n, g, p) ON CONFLICT DO NOTHING`,
    [snapshotId, orgs.map((o) => o.name), orgs.map((o) => o.guid), orgs.map((o) => o.precreated)],
  );
  return rowCount ?? 0;
}

export async function addAuthzJoins(db: Db, snapshotId: string, joins: { couchId: string; authzId: string }[]): Promise<number> {
  if (!joins.length) return 0;
  const { rowCount } = await db.query(
    `INSERT INTO mover.account_authz (snapshot_id, couch_id, authz_id)
     SELECT $1, c, a FROM unnest($2::text[], $3::text[]) AS t(c, a) ON CONFLICT DO NOTHING`,
    [snapshotId, joins.map((j) => j.couchId), joins.map((j) => j.authzId)],
  );
  return rowCount ?? 0;
}

/** The atomic swap: the new snapshot becomes current and the old ones go. */
export async function finishSnapshot(db: Db, snapshotId: string, skippedDocs: number): Promise<void> {
  await inTransaction(db, async (c) => {
    await c.query(
      `UPDATE mover.account_snapshots SET state = 'ready', finished_at = now(), skipped_docs = $2,
         orgs = (SELECT count(*) FROM mover.account_orgs WHERE snapshot_id = $1),
         precreated = (SELECT count(*) FROM mover.account_orgs WHERE snapshot_id = $1 AND precreated),
         authz_joins = (SELECT count(*) FROM mover.account_authz WHERE snapshot_id = $1)
       WHERE id = $1`,
      [snapshotId, skippedDocs],
    );
    await c.query(
      `INSERT INTO mover.account_snapshot_current (singleton, snapshot_id) VALUES (true, $1)
       ON CONFLICT (singleton) DO UPDATE SET snapshot_id = EXCLUDED.snapshot_id`,
      [snapshotId],
    );
    await c.query('DELETE FROM mover.account_orgs WHERE snapshot_id <> $1', [snapshotId]);
    await c.query('DELETE FROM mover.account_authz WHERE snapshot_id <> $1', [snapshotId]);
  });
}

export async function failSnapshot(db: Db, snapshotId: string, error: string): Promise<void> {
  await db.query(`UPDATE mover.account_snapshots SET state = 'failed', finished_at = now(), error = $2 WHERE id = $1`, [snapshotId, error]);
  await db.query('DELETE FROM mover.account_orgs WHERE snapshot_id = $1', [snapshotId]);
  await db.query('DELETE FROM mover.account_authz WHERE snapshot_id = $1', [snapshotId]);
}

export interface SnapshotStatus {
  orgs: number;
  precreated: number;
  authz_joins: number;
  refreshed_at: string | null;
  state: 'idle' | 'refreshing' | 'failed';
  error?: string;
}

export async function snapshotStatus(db: Db): Promise<SnapshotStatus> {
  const cur = await db.query(`SELECT s.* FROM mover.account_snapshots s WHERE s.id = ${CURRENT}`);
  const latest = await db.query(`SELECT state, error FROM mover.account_snapshots ORDER BY id DESC LIMIT 1`);
  const c = cur.rows[0];
  const l = latest.rows[0];
  const state = !l || l.state === 'ready' ? 'idle' : (l.state as 'refreshing' | 'failed');
  return {
    orgs: c?.orgs ?? 0,
    precreated: c?.precreated ?? 0,
    authz_joins: c?.authz_joins ?? 0,
    refreshed_at: c?.finished_at ? new Date(c.finished_at).toISOString() : null,
    state,
    ...(state === 'failed' ? { error: l.error } : {}),
  };
}

export async function lookupOrgs(q: Q, names: string[]): Promise<Map<string, AccountOrg>> {
  const { rows } = await q.query(`SELECT name, guid, precreated FROM mover.account_orgs WHERE snapshot_id = ${CURRENT} AND name = ANY($1)`, [names]);
  return new Map(rows.map((r) => [r.name, { name: r.name, guid: r.guid, precreated: r.precreated }]));
}

/** Orgs of the current snapshot not pre-created and with no row of the migration type yet (all, or among `names`). */
export async function uncapturedOrgs(
  q: Q,
  type: string,
  names?: string[],
  limit: number | null = null,
  after: string | null = null,
): Promise<{ name: string; guid: string }[]> {
  const { rows } = await q.query(
    `SELECT a.name, a.guid FROM mover.account_orgs a
     WHERE a.snapshot_id = ${CURRENT} AND NOT a.precreated
       AND ($2::text[] IS NULL OR a.name = ANY($2)) AND ($4::text IS NULL OR a.name > $4)
       -- Two anti-joins, not one with OR, so each uses its index.
       AND NOT EXISTS (SELECT 1 FROM org_migration_state s WHERE s.migration_type = $1 AND s.org_name = a.name)
       AND NOT EXISTS (SELECT 1 FROM org_migration_state s WHERE s.migration_type = $1 AND s.org_id = a.guid)
     ORDER BY a.name LIMIT $3`,
    [type, names ?? null, limit, after],
  );
  return rows;
}

/** couch id → authz id for the given object ids, from the current snapshot. */
export async function authzIds(q: Q, couchIds: string[]): Promise<Map<string, string>> {
  if (!couchIds.length) return new Map();
  const { rows } = await q.query({
    name: 'authz-ids',
    text: `SELECT couch_id, authz_id FROM mover.account_authz WHERE snapshot_id = ${CURRENT} AND couch_id = ANY($1)`,
    values: [couchIds],
  });
  return new Map(rows.map((r) => [r.couch_id, r.authz_id]));
}

/** A page of the current snapshot's orgs that are not pre-created, by name after `after` (the estate survey's targets). */
export async function snapshotOrgs(q: Q, after: string | null, limit: number): Promise<{ name: string; guid: string }[]> {
  const { rows } = await q.query(
    `SELECT name, guid FROM mover.account_orgs WHERE snapshot_id = ${CURRENT} AND NOT precreated AND ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2`,
    [after, limit],
  );
  return rows;
}
