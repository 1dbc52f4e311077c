// A per-org advisory lock held for as long as one delivery of a job works on
// the org. BullMQ runs a job once at a time unless a worker loses its lock
// (a stalled event loop) while still running: then two deliveries could race.
// The lock makes the second one stand aside.
import type { Db } from '../stores/postgres.js';

export interface OrgLock {
  release(): Promise<void>;
}

export async function tryLockOrg(db: Db, type: string, orgName: string): Promise<OrgLock | null> {
  const client = await db.connect();
  try {
    const { rows } = await client.query({ name: 'org-lock', text: 'SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS ok', values: [type, orgName] });
    if (!rows[0].ok) {
      client.release();
      return null;
    }
  } catch (err) {
    client.release(true);
    throw err;
  }
  return {
    async release() {
      try {
        await client.query({ name: 'org-unlock', text: 'SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', values: [type, orgName] });
        client.release();
      } catch {
        client.release(true); // a broken connection drops its locks with it
      }
    },
  };
}
