// The api's fleet-wide gauges for /metrics, read from cheap sources only:
// queue depths, runs and their breakers, orgs dark now, and org counts by
// state from the counters the state changes keep (never a GROUP BY over the
// state table inside a scrape). Each process's own counts are src/metrics.ts.
import client, { Registry } from 'prom-client';
import type { Context } from '../context.js';
import { countByState } from '../db/org-states.js';
import { activeRuns, inFlightOrgs } from '../db/runs.js';
import { errorMessage } from '../errors.js';
import { getSettings } from '../db/settings.js';

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
    name: 'mover_couchdb_guard',
    help: 'The live-service guard of each working run: budget_p99_ms (0: no guard), measured_p99_ms (its last figure; -1 with none), set_concurrency and effective_concurrency (lower while CouchDB breaks the budget).',
    labelNames: ['migration_type', 'run_id', 'figure'],
    registers: [fleet],
    async collect() {
      const [runs, settings] = await Promise.all([runsNow(), getSettings(ctx.db)]);
      this.reset();
      for (const { run: r } of runs) {
        if (r.state !== 'working') continue;
        const figures = {
          budget_p99_ms: settings.couchdbBudgetP99Ms,
          measured_p99_ms: r.guard_p99_ms ?? -1,
          set_concurrency: r.concurrency,
          effective_concurrency: Math.min(r.concurrency, r.effective_concurrency ?? r.concurrency),
        };
        for (const [figure, n] of Object.entries(figures)) this.set({ migration_type: r.migration_type, run_id: r.id, figure }, n);
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
