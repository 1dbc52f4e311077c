// Metrics operators can alert on (prom-client). Each process counts what it
// does in its own registry (default process metrics, per-org and per-step
// durations, orgs finished by outcome and failing step), served by the api at
// /metrics and by a worker on METRICS_PORT; Prometheus sums the processes.
// The api adds what describes the fleet as a whole, read from cheap sources
// only: queue depths, runs and their breakers, orgs dark now, and org counts
// by state from the counters the state changes keep (never a GROUP BY over
// the state table inside a scrape).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import client, { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Context } from './context.js';
import { countByState } from './db/org-states.js';
import { activeRuns, inFlightOrgs } from './db/runs.js';
import { errorMessage } from './errors.js';
import { storeRoundTrips } from './stores/round-trips.js';

/** This process's registry: default process metrics and what its workers count. */
export const registry = new Registry();
client.collectDefaultMetrics({ register: registry });
registry.registerMetric(storeRoundTrips);

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

/** The fleet-wide gauges of one api (a registry per app, so a rebuilt app in tests does not collide). */
export function fleetRegistry(ctx: Context): Registry {
  const fleet = new Registry();
  new client.Gauge({
    name: 'mover_orgs',
    help: 'Orgs in the state tracker by migration type and state (from counters the state changes keep; a hand edit of the table shows once the reconciler resyncs).',
    labelNames: ['migration_type', 'state'],
    registers: [fleet],
    async collect() {
      const rows = await countByState(ctx.db);
      this.reset();
      for (const r of rows) this.set({ migration_type: r.migration_type, state: r.state }, r.count);
    },
  });
  new client.Gauge({
    name: 'mover_queue_jobs',
    help: 'Jobs in each queue by BullMQ state.',
    labelNames: ['queue', 'state'],
    registers: [fleet],
    async collect() {
      const all = await Promise.all(
        Object.entries(ctx.queues).map(
          async ([name, q]) => [name, await q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized')] as const,
        ),
      );
      this.reset();
      for (const [name, counts] of all) for (const [state, n] of Object.entries(counts)) this.set({ queue: name, state }, n);
    },
  });
  // The three run gauges below read the same runs and in-flight orgs: read once per scrape (they collect together).
  let runsRead: { at: number; value: Promise<{ run: Awaited<ReturnType<typeof activeRuns>>[number]; inFlight: string[] }[]> } | undefined;
  const runsNow = () => {
    if (!runsRead || Date.now() - runsRead.at > 1000) {
      const value = activeRuns(ctx.db).then((list) => Promise.all(list.map(async (run) => ({ run, inFlight: await inFlightOrgs(ctx.db, run.id) }))));
      runsRead = { at: Date.now(), value };
    }
    return runsRead.value;
  };
  new client.Gauge({
    name: 'mover_run_active',
    help: 'Active runs (1) by migration type, state (working, halting), fatal_stop and breaker (closed, open, half_open).',
    labelNames: ['migration_type', 'state', 'fatal_stop', 'breaker'],
    registers: [fleet],
    async collect() {
      const runs = await runsNow();
      this.reset();
      for (const { run: r } of runs) this.set({ migration_type: r.migration_type, state: r.state, fatal_stop: String(r.fatal_stop), breaker: r.breaker }, 1);
    },
  });
  new client.Gauge({
    name: 'mover_run_orgs',
    help: 'Orgs of each active run by where they stand: enqueued, finished, failed, in_flight.',
    labelNames: ['migration_type', 'run_id', 'count'],
    registers: [fleet],
    async collect() {
      const runs = await runsNow();
      this.reset();
      for (const { run: r, inFlight } of runs) {
        for (const [count, n] of Object.entries({ enqueued: r.enqueued, finished: r.orgs_finished, failed: r.orgs_failed, in_flight: inFlight.length }))
          this.set({ migration_type: r.migration_type, run_id: r.id, count }, n);
      }
    },
  });
  new client.Gauge({
    name: 'mover_orgs_dark',
    help: 'Orgs of active runs with 503_mode up right now (only orgs in flight can be); -1 when the darklaunch Redis does not answer.',
    registers: [fleet],
    async collect() {
      const names = (await runsNow()).flatMap((r) => r.inFlight);
      try {
        this.set((await ctx.darklaunch.orgsDown(names)).length);
      } catch (err) {
        ctx.log.warn({ err: errorMessage(err) }, 'could not read which orgs are dark for /metrics');
        this.set(-1);
      }
    },
  });
  return fleet;
}

/** A worker process's own metrics on METRICS_PORT (GET /metrics), when set. */
export function serveMetrics(port: number, log: Logger): Server {
  const respond = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    try {
      // Collected before the head is written, so a failure can still answer 500.
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(text);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'could not collect metrics');
      res.writeHead(500).end();
    }
  };
  // respond logs its own failure; the server does not wait on a handler's promise.
  const server = createServer((req, res) => void respond(req, res));
  server.on('error', (err) => log.error({ port, err: err.message }, 'metrics server error'));
  server.listen(port, () => log.info({ port }, 'worker metrics on /metrics'));
  return server;
}
