import type { Db } from '../stores/postgres.js';

/** The cheapest round trip that proves Postgres answers (GET /readyz). */
export async function ping(db: Db): Promise<void> {
  await db.query('SELECT 1');
}
