// The audit log: every state change an operator causes, with time, actor and values.
import type { Db } from '../stores/postgres.js';

export async function audit(db: Db, actor: string, action: string, detail: Record<string, unknown> = {}): Promise<void> {
  await db.query(`INSERT INTO mover.audit_log (actor, action, detail) VALUES ($1, $2, $3)`, [actor, action, JSON.stringify(detail)]);
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  detail: Record<string, unknown>;
}

/** Newest first; the cursor is the id of the last entry of the previous page. */
export async function listAudit(db: Db, limit: number, before?: string): Promise<AuditEntry[]> {
  const { rows } = await db.query(`SELECT id, at, actor, action, detail FROM mover.audit_log WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2`, [
    before ?? null,
    limit,
  ]);
  return rows.map((r) => ({ id: String(r.id), at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, detail: r.detail }));
}
