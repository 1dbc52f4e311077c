// CouchDB's answers classified once, for every caller: the org's problem
// (data) or CouchDB's (infrastructure). docs/architecture.md, "The per-org frame".
import { InfrastructureError, OrgDataError } from '../errors.js';

/**
 * 404 on a database is the org's problem (its chef_<guid> database is
 * missing); anything else (refused, reset, timeout, 5xx) is CouchDB's.
 */
export async function couchCall<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw couchError(err, what);
  }
}

export function couchError(err: unknown, what: string): Error {
  const e = err as { statusCode?: number; message?: string; error?: string };
  if (e.statusCode === 404) return new OrgDataError(`${what}: not found in CouchDB`, { statusCode: 404 });
  if (
    e.statusCode &&
    e.statusCode >= 400 &&
    e.statusCode < 500 &&
    e.statusCode !== 401 &&
    e.statusCode !== 403 &&
    e.statusCode !== 408 &&
    e.statusCode !== 429
  ) {
    return new OrgDataError(`${what}: CouchDB answered ${e.statusCode} ${e.error ?? ''}`.trim(), { statusCode: e.statusCode });
  }
  return new InfrastructureError(`${what}: ${e.message ?? String(err)}`, 'couchdb', { cause: err });
}
