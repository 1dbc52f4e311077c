// The round trips this process makes to each store (what one org costs:
// docs/architecture.md, "Round trips per org"). Counted where each adapter
// sends: every Postgres statement or simple-query batch, every darklaunch
// Redis command or pipeline, every CouchDB request, retries included. BullMQ's own Redis commands are not
// seen here (bench:migrate reads them off the Redis server). Served with the
// process's metrics as mover_store_round_trips_total (src/metrics.ts).
import client from 'prom-client';

export type Store = 'postgres' | 'darklaunch_redis' | 'couchdb';

export const storeRoundTrips = new client.Counter({
  name: 'mover_store_round_trips_total',
  help: 'Requests this process sent to each store (Postgres statements, darklaunch Redis commands or pipelines, CouchDB requests), retries included.',
  labelNames: ['store'],
  registers: [],
});

const counts: Record<Store, number> = { postgres: 0, darklaunch_redis: 0, couchdb: 0 };

export function countRoundTrip(store: Store): void {
  counts[store]++;
  storeRoundTrips.inc({ store });
}

/** This process's counts so far (for a benchmark in the same process). */
export const roundTrips = (): Record<Store, number> => ({ ...counts });
