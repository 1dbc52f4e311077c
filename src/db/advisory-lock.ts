// A session advisory lock on (namespace, key), held on its own connection,
// for the few things one process at a time does: advance a phase, check a
// run's breaker. (Orgs are guarded by leases, src/frame/org-lease.ts, which
// hold no connection.)
import { connectOnce, retryThroughDbOutage, type Db } from '../stores/postgres.js';

export interface AdvisoryLock {
  /**
   * True once the lock's connection broke (a Postgres restart): the server
   * dropped the lock with it, and another delivery or the reconciler may hold
   * it now. Whoever holds it must check before acting on what it guards.
   */
  readonly lost: boolean;
  release(): Promise<void>;
}

/** Rides through a Postgres outage: a lock asked on a connection that broke died with it, so asking again is safe. */
export function tryLock(db: Db, namespace: string, key: string): Promise<AdvisoryLock | null> {
  return retryThroughDbOutage(db, 'advisory lock', () => tryLockOnce(db, namespace, key));
}

async function tryLockOnce(db: Db, namespace: string, key: string): Promise<AdvisoryLock | null> {
  const client = await connectOnce(db);
  try {
    const { rows } = await client.query({
      name: 'advisory-lock',
      text: 'SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS ok',
      values: [namespace, key],
    });
    if (!rows[0].ok) {
      client.release();
      return null;
    }
  } catch (err) {
    client.release(true);
    throw err;
  }
  let lost = false;
  // The pool's own listener logs the error; this one only remembers that the lock went with the connection.
  const markLost = () => (lost = true);
  client.on('error', markLost);
  client.on('end', markLost);
  return {
    get lost() {
      return lost;
    },
    async release() {
      client.off('error', markLost);
      client.off('end', markLost);
      try {
        await client.query({ name: 'advisory-unlock', text: 'SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', values: [namespace, key] });
        client.release();
      } catch {
        client.release(true); // a broken connection drops its locks with it
      }
    },
  };
}
