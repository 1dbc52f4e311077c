// What a benchmark reads of the round trips mover sends to its stores
// (src/stores/round-trips.ts): a worker process's from its metrics, this
// process's own from its counters, both as one flat record of counts, the
// CouchDB requests by op beside the stores' totals; and how a pass's counts
// are put side by side with another's.
import { couchRequestsByOp, roundTrips } from '../../src/stores/round-trips.js';

/** Counts by name: a store's round trips (postgres, couchdb, ...) and `couchdb.<op>` for each kind of CouchDB request. */
export type Trips = Record<string, number>;

/** What a process's metrics text says it sent, by store and by CouchDB op. */
export function tripsOfMetrics(text: string): Trips {
  const out: Trips = {};
  for (const m of text.matchAll(/^mover_store_round_trips_total\{store="(\w+)"\} (\d+)/gm)) out[m[1]] = Number(m[2]);
  for (const m of text.matchAll(/^mover_couchdb_requests_total\{op="(\w+)"\} (\d+)/gm)) out[`couchdb.${m[1]}`] = Number(m[2]);
  return out;
}

/** The worker processes' counts so far, summed, from each one's /metrics. */
export async function workerTrips(metricsPorts: number[]): Promise<Trips> {
  const texts = await Promise.all(metricsPorts.map(async (port) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text()));
  return sumTrips(texts.map(tripsOfMetrics));
}

/** Waits until every worker process answers on its metrics port (it has booted); throws past 60 s. */
export async function waitForWorkers(metricsPorts: number[]): Promise<void> {
  for (let i = 0; ; i++) {
    const up = await workerTrips(metricsPorts).then(
      () => true,
      () => false,
    );
    if (up) return;
    if (i > 120) throw new Error('worker processes did not start');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** This process's own counts so far. */
export function ownTrips(): Trips {
  const out: Trips = { ...roundTrips() };
  for (const [op, n] of Object.entries(couchRequestsByOp())) out[`couchdb.${op}`] = n;
  return out;
}

export function sumTrips(all: Trips[]): Trips {
  const out: Trips = {};
  for (const t of all) for (const [k, v] of Object.entries(t)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** after − before, each name, divided by `per` (the orgs of the pass); names that did not move left out, the stores' totals kept. */
export function tripsSpent(before: Trips, after: Trips, per = 1): Trips {
  const out: Trips = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    if (d || !k.includes('.')) out[k] = d / per;
  }
  return out;
}

/**
 * The CouchDB requests of several passes side by side, one line per op
 * (and the total), in requests per org, and the total of each pass.
 */
export function couchTable(passes: Record<string, { perOrg: Trips; orgs: number }>): string[] {
  const names = Object.keys(passes);
  const ops = [...new Set(names.flatMap((n) => Object.keys(passes[n].perOrg).filter((k) => k.startsWith('couchdb.'))))].sort();
  const width = Math.max(...names.map((n) => n.length), 8);
  const cell = (s: string) => s.padStart(width);
  const row = (label: string, f: (n: string) => string) => `    ${label.padEnd(14)}${names.map((n) => cell(f(n))).join('  ')}`;
  const per = (n: string, k: string) => (passes[n].perOrg[k] ?? 0).toFixed(2);
  return [
    row('per org', (n) => n),
    ...ops.map((k) => row(k.slice('couchdb.'.length), (n) => per(n, k))),
    row('all', (n) => per(n, 'couchdb')),
    row('in the pass', (n) => String(Math.round((passes[n].perOrg.couchdb ?? 0) * passes[n].orgs))),
  ];
}
