// Store outages (docs/architecture.md, "Riding through store faults"): which
// errors mean "the store is not there right now", and how a call waits one
// out. A Redis failover, a Postgres restart or a CouchDB hiccup during a
// long migration must cost a pause, not failed orgs: every adapter call that
// finds its store unreachable is tried again, with backoff, for up to the
// grace (STORE_OUTAGE_GRACE_MS), before its error counts.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';

export interface OutagePolicy {
  /** How long a call waits for its store to come back before it fails. */
  graceMs: number;
  log: Logger;
}

/** Network errors: the connection could not be made, or broke. */
const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);
/**
 * SQLSTATEs of a server going away or not there yet: admin_shutdown,
 * crash_shutdown, cannot_connect_now, the connection exceptions (class 08),
 * too_many_connections.
 */
const PG_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300']);
/** What pg, ioredis and Node say when a connection is gone and no code comes with it. */
const MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Connection ended unexpectedly/i,
  /Client has encountered a connection error/i,
  /not queryable/i,
  /Connection is closed/i,
  /max retries per request/i,
  /Stream isn't writeable/i,
  /socket hang up/i,
  /fetch failed/i,
  // nano 11 names only its cause's text ("error happened in your connection. Reason: Error: read ECONNRESET"):
  // a kept-alive connection the server closed while this process was paused or idle breaks this way.
  /\b(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT)\b/,
  /other side closed/i,
];
/** HTTP statuses of a CouchDB that is restarting or behind a proxy that lost it. */
const HTTP_UNAVAILABLE = new Set([502, 503, 504]);

/** An error whose operation may have been applied although it reports failure (a COMMIT whose answer was lost): never retried. */
export class OutcomeUnknownError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'OutcomeUnknownError';
  }
}

/**
 * A store that stayed unreachable past the grace. Not unreachable any more in
 * the sense of isStoreUnreachable: a caller that retries through an outage too must not
 * wait a second grace for the same outage.
 */
export class GraceExpiredError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'GraceExpiredError';
  }
}

/** Whether the error (or any error in its cause chain) says the store is unreachable right now. */
export function isStoreUnreachable(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof OutcomeUnknownError || e instanceof GraceExpiredError) return false;
    const { code, statusCode, message } = e as { code?: unknown; statusCode?: unknown; message?: unknown };
    if (typeof code === 'string' && (NET_CODES.has(code) || PG_CODES.has(code))) return true;
    if (typeof statusCode === 'number' && HTTP_UNAVAILABLE.has(statusCode)) return true;
    if (typeof message === 'string' && MESSAGES.some((m) => m.test(message))) return true;
  }
  return false;
}

const MAX_BACKOFF_MS = 2000;

/**
 * Runs fn; while it fails because its store is unreachable, waits (100 ms,
 * doubling to 2 s) and runs it again, for up to the grace. fn must be safe
 * to run again after such a failure: a read, a conditional statement, an
 * idempotent flag write, or a transaction that certainly rolled back.
 */
export async function retryThroughOutage<T>(policy: OutagePolicy, store: string, what: string, fn: () => Promise<T>): Promise<T> {
  let since = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await fn();
      if (since) policy.log.info({ store, what, waited_ms: Date.now() - since, attempts: attempt + 1 }, 'store answers again; carrying on');
      return result;
    } catch (err) {
      if (!isStoreUnreachable(err)) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (!since) {
        since = Date.now();
        policy.log.warn({ store, what, err: message, grace_ms: policy.graceMs }, 'store unreachable; waiting for it');
      }
      if (Date.now() - since >= policy.graceMs) {
        policy.log.error({ store, what, err: message, waited_ms: Date.now() - since }, 'store still unreachable after the grace; giving up');
        throw new GraceExpiredError(`${store} unreachable for ${Math.round((Date.now() - since) / 1000)} s (${what}): ${message}`, { cause: err });
      }
      await sleep(Math.min(MAX_BACKOFF_MS, 100 * 2 ** attempt));
    }
  }
}
