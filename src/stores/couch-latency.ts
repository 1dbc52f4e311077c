// How long this process's CouchDB requests take, over the last few seconds:
// the live-service guard's figure where CouchDB gives none of its own
// (src/runs/couchdb-guard.ts). Each request the adapter sends is timed
// (src/stores/couch.ts, Couch.call); kept in a ring, so a busy process holds
// a bounded window, not every request of a run.

const RING = 4096;
const at = new Float64Array(RING);
const took = new Float64Array(RING);
let next = 0;
let filled = 0;

export function recordCouchRequest(ms: number, now = Date.now()): void {
  at[next] = now;
  took[next] = ms;
  next = (next + 1) % RING;
  filled = Math.min(filled + 1, RING);
}

/** The p99 of this process's CouchDB request times over the last `windowMs`, and how many requests it saw; p99 null with none. */
export function couchRequestP99(windowMs: number, now = Date.now()): { p99Ms: number | null; requests: number } {
  const times: number[] = [];
  for (let i = 0; i < filled; i++) if (now - at[i] <= windowMs) times.push(took[i]);
  if (!times.length) return { p99Ms: null, requests: 0 };
  times.sort((a, b) => a - b);
  return { p99Ms: times[Math.min(times.length - 1, Math.ceil(times.length * 0.99) - 1)], requests: times.length };
}

/** Forgets every request seen (tests). */
export function forgetCouchRequests(): void {
  next = 0;
  filled = 0;
}
