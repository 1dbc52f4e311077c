import pg from 'pg';
import { InfrastructureError, isOrgError, OrgDataError } from '../errors.js';
import { countRoundTrip } from './round-trips.js';
import { isStoreUnreachable, OutcomeUnknownError, retryThroughOutage, type OutagePolicy } from './outage.js';

export type Db = pg.Pool;
export type DbClient = pg.PoolClient;

/** Each pool's own calls, sent once (not retried), and its outage policy. */
const sentOnce = new WeakMap<Db, { query: Db['query']; connect: () => Promise<DbClient>; policy: OutagePolicy }>();
const guarded = new WeakSet<DbClient>();
type ConnectCallback = (err: Error | undefined, client: DbClient, done: () => void) => void;

/**
 * A pool whose calls are retried through a Postgres restart (src/stores/outage.ts):
 * a query or a connect that finds the server gone is tried again until it
 * answers, for up to the grace. A connection waits at most 30 s for a free
 * slot in the pool, so nothing hangs for ever with an org in 503.
 */
export function createPool(databaseUrl: string, policy: OutagePolicy, max = 10): Db {
  // keepAlive: a connection whose server vanished without a word errors in minutes, not after TCP's quarter of an hour.
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types: { getTypeParser: utcTimestamps },
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => policy.log.warn({ store: 'postgres', err: err.message }, 'idle Postgres connection lost'));
  // Every statement one of this pool's connections sends is one round trip (src/stores/round-trips.ts),
  // whether it goes by pool.query or by a client checked out for a transaction: counted once, on the
  // connection that sends it, as the pool makes each one (pg's own Client is left as it is).
  pool.on('connect', countQueries);
  const rawQuery: Db['query'] = pool.query.bind(pool);
  const rawConnect = pool.connect.bind(pool) as ((cb: ConnectCallback) => void) & (() => Promise<DbClient>);
  const connectGuarded = async () => guard(await rawConnect(), policy);
  sentOnce.set(pool, { query: rawQuery, connect: connectGuarded, policy });
  // Only the promise forms are used in mover; every single statement it sends outside a transaction is safe to send again.
  pool.query = ((...args: Parameters<Db['query']>) =>
    retryThroughOutage(policy, 'postgres', 'query', () => (rawQuery as (...a: unknown[]) => Promise<unknown>)(...args))) as Db['query'];
  pool.connect = ((cb?: ConnectCallback) => {
    // pg's own pool.query takes its connection with a callback: left as it is (the query around it is retried).
    if (cb) return rawConnect(cb);
    return retryThroughOutage(policy, 'postgres', 'connect', connectGuarded);
  }) as Db['connect'];
  return pool;
}

/**
 * Chef's timestamp columns (timestamp without time zone: containers' and
 * groups' created_at and updated_at, org_migration_state's migration_start
 * and migration_end) hold UTC, as Chef writes and reads them. pg would read
 * them as the host's local time, wrong by its offset wherever TZ is not UTC:
 * they are read as UTC here, whatever the host. (Writes send UTC strings:
 * src/db/org-objects.ts; mover's own tables are timestamptz.)
 */
const TIMESTAMP = 1114;
const utcTimestamps = ((oid: number, format?: 'text' | 'binary') =>
  oid === TIMESTAMP && format !== 'binary'
    ? (value: string) => (/^\d{4}-\d\d-\d\d \d/.test(value) ? new Date(`${value.replace(' ', 'T')}Z`) : value)
    : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser;

function countQueries(client: pg.PoolClient): void {
  const send = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((...args: unknown[]) => {
    countRoundTrip('postgres');
    return send(...args);
  }) as typeof client.query;
}

/**
 * A client checked out with no query running (an advisory lock held through
 * a drain wait) gets the server's goodbye as an 'error' event: without a
 * listener the process would die.
 */
function guard(client: DbClient, policy: OutagePolicy): DbClient {
  if (!guarded.has(client)) {
    guarded.add(client);
    client.on('error', (err) => policy.log.warn({ store: 'postgres', err: err.message }, 'Postgres connection in use lost; its work fails and is retried'));
  }
  return client;
}

/** A connection taken once, not waited for: for work retried through an outage as a whole (retryThroughDbOutage). */
export function connectOnce(db: Db): Promise<DbClient> {
  const raw = sentOnce.get(db);
  return raw ? raw.connect() : db.connect();
}

/** fn, retried through a Postgres outage with the pool's grace; fn must be safe to run again (src/stores/outage.ts). */
export function retryThroughDbOutage<T>(db: Db, what: string, fn: () => Promise<T>): Promise<T> {
  const policy = sentOnce.get(db)?.policy;
  return policy ? retryThroughOutage(policy, 'postgres', what, fn) : fn();
}

/** One statement, sent once: for health checks, which must say "down" at once rather than wait. */
export async function queryOnce(db: Db, text: string): Promise<void> {
  const raw = sentOnce.get(db);
  await (raw ? raw.query(text) : db.query(text));
}

/**
 * fn in one transaction. If the connection fails before COMMIT is sent, the
 * server has rolled the transaction back and the whole of it runs again once
 * the server answers (fn must be safe to run again: ours are conditional).
 * If it fails during COMMIT nobody knows whether it committed: that is never
 * retried, but thrown as an OutcomeUnknownError for the caller to settle.
 */
export async function inTransaction<T>(db: Db, fn: (c: DbClient) => Promise<T>): Promise<T> {
  // The raw connect inside: the retry around the whole transaction covers it, so the grace is not waited twice.
  const once = async () => {
    const client = await connectOnce(db);
    let broken: Error | undefined;
    let committing = false;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      committing = true;
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // The first error is the one that matters; a connection that cannot even roll back is dropped, not reused.
      if (!committing) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      else broken = err as Error;
      // A COMMIT the server answered with an error (a deferred constraint, a serialization failure) did not commit; one whose connection broke may have.
      if (committing && isStoreUnreachable(err)) throw new OutcomeUnknownError(`COMMIT: ${(err as Error).message}`, { cause: err });
      throw err;
    } finally {
      client.release(broken);
    }
  };
  return retryThroughDbOutage(db, 'transaction', once);
}

// SQLSTATE classes that mean "this org's data does not fit": integrity
// violations (23), data exceptions (22). Everything else is the database,
// and the error keeps its cause, so whether the store was merely unreachable
// (src/stores/outage.ts) can still be told.
/**
 * Text PostgreSQL cannot store: a NUL (U+0000) or a byte sequence invalid in
 * the database's encoding (SQLSTATE 22021, 22P05). The api answers it 400:
 * the operator sent it, the database is fine.
 */
export function isUnstorableText(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return code === '22021' || code === '22P05';
}

export function classifyPgError(err: unknown, what: string): Error {
  const code = (err as { code?: string } | null | undefined)?.code;
  if (typeof code === 'string' && (code.startsWith('23') || code.startsWith('22'))) {
    return new OrgDataError(`${what}: ${(err as Error).message}`, { sqlstate: code });
  }
  if (isOrgError(err) || err instanceof InfrastructureError) return err;
  return new InfrastructureError(`${what}: ${(err as Error | undefined)?.message ?? String(err)}`, 'postgres', { cause: err });
}
