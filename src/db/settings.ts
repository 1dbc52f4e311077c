// Runtime settings shared by every process: kept in Postgres so a restart or a
// new replica sees what the operator set.
import type { Db } from '../stores/postgres.js';

export interface Settings {
  /** Pacing of org starts (legacy sleep_time), applied as the queue's global rate limit. */
  sleepTimeMs: number;
  /** Wait after an org goes dark, so writes in flight can land before the copy. */
  drainWaitMs: number;
  /** The failure breaker: a run halts itself when more than this share of its last failureBreakerWindow finished orgs failed on their data. */
  failureBreakerShare: number;
  failureBreakerWindow: number;
  /** How long a run's infrastructure breaker stays open before the stores are probed again. */
  breakerCoolDownMs: number;
  /** How long every store must keep answering (half-open) before the breaker closes and the run goes on. */
  breakerStableMs: number;
  /** The live-service guard's budget: CouchDB's p99 request time, in ms, that the fleet slows its starts to keep under; 0: no guard (src/runs/couchdb-guard.ts). */
  couchdbBudgetP99Ms: number;
}

/** The runbook's sleep_time after an org goes dark: what the drain wait is unless an operator lowers it knowingly. */
export const SAFE_DRAIN_WAIT_MS = 5000;

export const DEFAULT_SETTINGS: Settings = {
  sleepTimeMs: 0,
  drainWaitMs: SAFE_DRAIN_WAIT_MS,
  failureBreakerShare: 0.2,
  failureBreakerWindow: 50,
  breakerCoolDownMs: 10_000,
  breakerStableMs: 5_000,
  couchdbBudgetP99Ms: 0,
};

export async function getSettings(db: Db): Promise<Settings> {
  const { rows } = await db.query(`SELECT key, value FROM mover.settings WHERE key = ANY($1)`, [Object.keys(DEFAULT_SETTINGS)]);
  const out: Settings = { ...DEFAULT_SETTINGS };
  for (const r of rows) (out as unknown as Record<string, unknown>)[r.key] = r.value;
  return out;
}

export async function setSetting<K extends keyof Settings>(db: Db, key: K, value: Settings[K]): Promise<void> {
  await db.query(`INSERT INTO mover.settings (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`, [
    key,
    JSON.stringify(value),
  ]);
}

// Per-org jobs read settings on every org; a second-old value is fresh enough
// and saves a round trip per org.
let cache = new WeakMap<Db, { at: number; value: Promise<Settings> }>();
export function cachedSettings(ctx: { db: Db }, maxAgeMs = 1000): Promise<Settings> {
  const hit = cache.get(ctx.db);
  if (hit && Date.now() - hit.at < maxAgeMs) return hit.value;
  const value = getSettings(ctx.db);
  cache.set(ctx.db, { at: Date.now(), value });
  // The caller awaiting `value` gets the error; the cache only forgets it, so the next caller asks again.
  value.catch(() => cache.delete(ctx.db));
  return value;
}

/**
 * Forgets every cached read in this process, so the next one goes to
 * Postgres: for a test that changes a setting and runs workers in its own
 * process, rather than waiting out the second. Other processes keep theirs.
 */
export function forgetCachedSettings(): void {
  cache = new WeakMap();
}
