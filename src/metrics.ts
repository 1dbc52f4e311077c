// What each process counts, for operators to alert on (prom-client): default
// process metrics, per-org and per-step durations, orgs finished by outcome
// and failing step, dark time, CouchDB conflicts, store round trips. Served by
// the api at /metrics (src/api/routes/metrics.ts, beside the fleet-wide gauges
// of src/api/fleet-metrics.ts) and by a worker on METRICS_PORT
// (src/workers/metrics-server.ts); Prometheus sums the processes.
import client, { Registry } from 'prom-client';
import { couchRequests, storeRoundTrips } from './stores/round-trips.js';

/** This process's registry: default process metrics and what its workers count. */
export const registry = new Registry();
client.collectDefaultMetrics({ register: registry });
registry.registerMetric(storeRoundTrips);
registry.registerMetric(couchRequests);

const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30, 60, 120, 300];

export const orgDuration = new client.Histogram({
  name: 'mover_org_duration_seconds',
  help: 'Time from claiming an org to completing or failing it (its copy, then its dark part).',
  labelNames: ['migration_type', 'outcome'],
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

// Around the default 5 s drain wait, where the dark times of a healthy fleet fall.
const DARK_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 5.1, 5.25, 5.5, 6, 7, 8, 10, 15, 30, 60, 120, 300];

export const orgDarkSeconds = new client.Histogram({
  name: 'mover_org_dark_seconds',
  help: 'How long an org was dark (503): from the write that set 503_mode to the one that cleared it (the switch, or the restore of a failed org).',
  labelNames: ['migration_type', 'outcome'],
  buckets: DARK_BUCKETS,
  registers: [registry],
});

export const stepDuration = new client.Histogram({
  name: 'mover_step_duration_seconds',
  help: 'Time each step of a per-org migration took, whatever its outcome.',
  labelNames: ['migration_type', 'step'],
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

export const orgsFinished = new client.Counter({
  name: 'mover_orgs_finished_total',
  help: 'Orgs this process finished, by outcome (completed, failed) and, for a failure, the step it failed at (fail_location) and its kind (data, infrastructure).',
  labelNames: ['migration_type', 'outcome', 'fail_location', 'kind'],
  registers: [registry],
});

export const couchConflicts = new client.Counter({
  name: 'mover_couchdb_conflicts_total',
  help: 'Documents CouchDB refused to this process with a conflict: changed since this delivery read them (by Chef, or by a delivery that outran a paused one), so nothing was overwritten. By kind and operation (write_back, purge_delete).',
  labelNames: ['migration_type', 'op'],
  registers: [registry],
});
