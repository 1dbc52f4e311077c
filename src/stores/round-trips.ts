// The round trips this process makes to each store (what one org costs:
// docs/architecture.md, "Round trips per org"). Counted where each adapter
// sends: every Postgres statement or simple-query batch, every darklaunch
// Redis command or pipeline, every CouchDB request, retries included. BullMQ's own Redis commands are not
// seen here (bench:migrate reads them off the Redis server). Served with the
// process's metrics as mover_store_round_trips_total (src/metrics.ts).
// CouchDB's are also counted by what each request is (mover_couchdb_requests_total):
// a migrated org should cost the protocol's two, its read and its _changes,
// and anything else (probes, the refresh, index upkeep) shows by name.
import client from 'prom-client';

export type Store = 'postgres' | 'darklaunch_redis' | 'couchdb';

/**
 * What a CouchDB request is for. `org_read` is an org database's documents
 * (_all_docs or _find: the copy, verify's read, a survey page), `org_seq`
 * its info (only on a server that does not return update_seq with
 * _all_docs), `org_changes` its _changes (check_writes), `org_write` a
 * _bulk_docs into it (write-back, purge); `account_read` a page of
 * opscode_account (the account refresh), `account_write` AuthJoins written
 * back, `authz_lookup` an AuthJoin look-up (live, or the refresh's warm-up),
 * `authz_index` making mover's index or view; `server_info` GET / and
 * `mango_probe` the _index question (capabilities, once per process);
 * `health` the store probe of /readyz and the breaker check. `unlabelled`
 * is a request sent around Couch.call's labels: a bug to fix, never expected.
 */
export type CouchOp =
  | 'org_read'
  | 'org_seq'
  | 'org_changes'
  | 'org_write'
  | 'account_read'
  | 'account_write'
  | 'authz_lookup'
  | 'authz_index'
  | 'server_info'
  | 'mango_probe'
  | 'health'
  | 'guard_stats'
  | 'guard_probe'
  | 'open_dbs_check'
  | 'unlabelled';

export const storeRoundTrips = new client.Counter({
  name: 'mover_store_round_trips_total',
  help: 'Requests this process sent to each store (Postgres statements, darklaunch Redis commands or pipelines, CouchDB requests), retries included.',
  labelNames: ['store'],
  registers: [],
});

export const couchRequests = new client.Counter({
  name: 'mover_couchdb_requests_total',
  help: 'CouchDB requests this process sent, by what each is (op: org_read, org_changes, account_read, health, ...), retries included.',
  labelNames: ['op'],
  registers: [],
});

const counts: Record<Store, number> = { postgres: 0, darklaunch_redis: 0, couchdb: 0 };
const couchCounts: Partial<Record<CouchOp, number>> = {};

export function countRoundTrip(store: Store): void {
  counts[store]++;
  storeRoundTrips.inc({ store });
}

/** One CouchDB request sent: a round trip to the store, and one of its op. */
export function countCouchRequest(op: CouchOp): void {
  countRoundTrip('couchdb');
  couchCounts[op] = (couchCounts[op] ?? 0) + 1;
  couchRequests.inc({ op });
}

/** This process's counts so far (for a benchmark in the same process). */
export const roundTrips = (): Record<Store, number> => ({ ...counts });

/** This process's CouchDB requests so far by op (ops never sent left out). */
export const couchRequestsByOp = (): Partial<Record<CouchOp, number>> => ({ ...couchCounts });
