import { queryOnce, type Db } from '../stores/postgres.js';

/** The cheapest round trip that proves Postgres answers, sent once (GET /readyz must say "down" at once, not wait). */
export async function ping(db: Db): Promise<void> {
  await queryOnce(db, 'SELECT 1');
}
