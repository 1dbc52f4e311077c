// Does every store answer right now? One probe each, sent once with a short
// timeout (never retried through an outage): for GET /readyz, and for the
// breaker check, which closes a run's breaker only once every store has answered
// for a while.
import type { Db } from './postgres.js';
import { ping } from '../db/ping.js';
import { errorMessage } from '../errors.js';

const PROBE_TIMEOUT_MS = 2000;

/** p, or an error once ms have passed without an answer. */
export const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref())]);

export interface StoreHealth {
  /** Each store: 'ok', or why not. */
  checks: Record<string, string>;
  /** The stores that did not answer, by name. */
  failing: string[];
}

/** The stores a fleet process talks to, each able to answer a probe. */
export interface Probed {
  db: Db;
  queueRedis: { ping(): Promise<unknown> };
  darklaunchRedis: { ping(): Promise<unknown> };
  couch: { ping(): Promise<unknown> };
}

export async function checkStores(ctx: Probed): Promise<StoreHealth> {
  const probes: Record<string, () => Promise<unknown>> = {
    postgres: () => ping(ctx.db),
    queue_redis: () => ctx.queueRedis.ping(),
    darklaunch_redis: () => ctx.darklaunchRedis.ping(),
    couchdb: () => ctx.couch.ping(),
  };
  const checks: Record<string, string> = {};
  const failing: string[] = [];
  await Promise.all(
    Object.entries(probes).map(async ([name, probe]) => {
      try {
        await withTimeout(probe(), PROBE_TIMEOUT_MS);
        checks[name] = 'ok';
      } catch (err) {
        checks[name] = errorMessage(err);
        failing.push(name);
      }
    }),
  );
  return { checks, failing: failing.sort() };
}
