// CouchDB keeps a bounded number of database files open ([couchdb]
// max_dbs_open: 500 by default on 3.x, 100 on 1.x) and closes the least
// recently used one to open another. A paced run holds each of its orgs'
// databases through the drain wait: once concurrency × shards per database
// passes that limit, every org's database is closed before its check and
// opened again for it, and the live orgs' databases are closed under Chef's
// traffic. On CouchDB 3.5 at concurrency 300 (600 shard files against 500)
// that doubled CouchDB's CPU per org (docs/operating.md, "CouchDB's open
// databases"). mover cannot change the server; it checks at a run's start
// and when its concurrency is set, and says what to raise.
import type { Context } from '../context.js';
import { withTimeout } from '../stores/health.js';
import { errorMessage } from '../errors.js';

export interface OpenDbsLimit {
  maxDbsOpen: number;
  shardsPerDb: number;
}

const CHECK_TIMEOUT_MS = 3000;

/** What a run of `concurrency` orgs holds open against CouchDB's limit, in the operator's words; null when it fits. */
export function openDbsWarning(limit: OpenDbsLimit, concurrency: number): string | null {
  const held = concurrency * limit.shardsPerDb;
  if (held < limit.maxDbsOpen) return null;
  const shards = limit.shardsPerDb > 1 ? ` × ${limit.shardsPerDb} shard files` : '';
  const fits = Math.max(1, Math.floor(limit.maxDbsOpen / (2 * limit.shardsPerDb)));
  return (
    `CouchDB keeps at most ${limit.maxDbsOpen} database files open ([couchdb] max_dbs_open) and a run of concurrency ${concurrency} ` +
    `holds ${held} open through its drain wait (${concurrency} orgs${shards}): each org's database is closed and opened again for its check, ` +
    `and live orgs' databases are closed under Chef's traffic. Raise max_dbs_open to at least ${2 * held} (the run's and as many again ` +
    `for Chef's traffic), or run at concurrency ${fits} or less`
  );
}

/**
 * Reads CouchDB's limit and returns the warning for a run of `concurrency`
 * (logged), or null. A limit it cannot read (no admin rights, a server with
 * no such setting) is logged with why and is no warning: never an error.
 */
export async function checkOpenDbs(ctx: Context, type: string, concurrency: number): Promise<string | null> {
  const log = ctx.log.child({ migration_type: type, concurrency });
  let limit: OpenDbsLimit | { why: string };
  try {
    limit = await withTimeout(ctx.couch.openDbsLimit(), CHECK_TIMEOUT_MS);
  } catch (err) {
    limit = { why: errorMessage(err) };
  }
  if ('why' in limit) {
    log.info({ reason: limit.why }, "could not read CouchDB's open-database limit; the run's concurrency is not checked against it");
    return null;
  }
  const warning = openDbsWarning(limit, concurrency);
  if (warning) log.warn({ max_dbs_open: limit.maxDbsOpen, shards_per_db: limit.shardsPerDb }, warning);
  return warning;
}
