import pg from 'pg';
import type { Logger } from 'pino';
import { InfrastructureError, OrgDataError } from '../errors.js';

export type Db = pg.Pool;
export type DbClient = pg.PoolClient;

/**
 * A pool that never makes a caller wait for ever: an exhausted pool or an
 * unreachable server fails the query after 30 s (an infrastructure error,
 * which halts the run) instead of hanging an org in 503.
 */
export function createPool(databaseUrl: string, log: Logger, max = 10): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, connectionTimeoutMillis: 30_000 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => log.warn({ store: 'postgres', err: err.message }, 'idle Postgres connection lost'));
  return pool;
}

export async function inTransaction<T>(db: Db, fn: (c: DbClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // The first error is the one that matters; a connection that cannot even roll back is dropped, not reused.
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}

// SQLSTATE classes that mean "this org's data does not fit": integrity
// violations (23), data exceptions (22). Everything else is the database.
export function classifyPgError(err: unknown, what: string): Error {
  const code = (err as { code?: string }).code;
  if (typeof code === 'string' && (code.startsWith('23') || code.startsWith('22'))) {
    return new OrgDataError(`${what}: ${(err as Error).message}`, { sqlstate: code });
  }
  if (err instanceof OrgDataError || err instanceof InfrastructureError) return err;
  return new InfrastructureError(`${what}: ${(err as Error)?.message ?? String(err)}`, 'postgres', { cause: err });
}
