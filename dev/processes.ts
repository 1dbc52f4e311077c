// The environment an api or worker process is started with (as the Procfile
// does) for a given config: what the tests, the fault benchmark and the huge
// org benchmark spawn. `extra` adds or overrides variables; an undefined
// value removes one (a test of a missing variable).
import type { Config } from '../src/config.js';

export function processEnv(config: Config, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    ...(config.darklaunchRedisUrl !== config.redisUrl ? { DARKLAUNCH_REDIS_URL: config.darklaunchRedisUrl } : {}),
    COUCHDB_URL: config.couchdbUrl,
    ...(config.couchdbAccountDb ? { COUCHDB_ACCOUNT_DB: config.couchdbAccountDb } : {}),
    MOVER_API_TOKEN: config.apiToken,
    QUEUE_PREFIX: config.queuePrefix,
    ...extra,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/**
 * Throwaway servers (private Redis, PostgreSQL, PouchDB Server) started by
 * this process. With ownProcessGroup they run in a process group of their
 * own: a terminal's Ctrl-C (SIGINT to the whole foreground group) then reaches
 * only the demo, which removes what it made and stops them itself. Tests leave
 * it off, so a killed test run takes its servers with it.
 */
export const throwawayServers = { ownProcessGroup: false };

/**
 * What is left running if this process exits without stopping what it
 * started (a benchmark that throws part-way would leave its workers and
 * stores behind, busy on the shared cores): each one's synchronous kill, run
 * by one 'exit' listener. Returns the call that takes it off again, for a
 * process stopped as usual.
 */
const leftAtExit = new Set<() => void>();
let exitHooked = false;
export function stopAtExit(kill: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => leftAtExit.forEach((k) => k()));
  }
  leftAtExit.add(kill);
  return () => leftAtExit.delete(kill);
}
