// The one typed config of the fleet: every process reads its env through here.
// A missing or malformed value stops the process at start with one line naming
// the variable (exit 1), so a mis-set replica never joins the fleet half-configured.

export interface Config {
  databaseUrl: string;
  redisUrl: string;
  darklaunchRedisUrl: string;
  couchdbUrl: string;
  /** The account database's name, if not opscode_account (a CouchDB that several estates or test files share). */
  couchdbAccountDb?: string;
  /** The single shared token ('' when MOVER_OPERATORS_FILE names the operators instead). */
  apiToken: string;
  /** One operator a line, `name sha256-hex-of-token` (src/api/operators.ts); set, each request is one named operator's. */
  operatorsFile?: string;
  port: number;
  logLevel: string;
  queuePrefix: string;
  workerConcurrency: number;
  dryRun: boolean;
  /** How long a store call waits for an unreachable store to come back before its error counts (src/stores/outage.ts). */
  storeOutageGraceMs: number;
  /**
   * How long a worker's hold on a job lasts without renewal: a worker killed
   * mid-job has its jobs delivered again after about this long (BullMQ's lock
   * and stall check).
   */
  jobLockMs: number;
  /** A worker serves its own process metrics on this port (GET /metrics); unset: none. */
  metricsPort?: number;
  /** The queue Redis is a Redis Cluster (REDIS_URL names one of its nodes); the darklaunch Redis stays a single server. */
  redisCluster?: boolean;
}

/**
 * The key prefix of every queue. On a Redis Cluster it is a hash tag
 * ({mover}): BullMQ's scripts touch many keys of a queue at once, and a
 * cluster runs a script only on keys of one slot.
 */
export const bullPrefix = (config: Pick<Config, 'queuePrefix' | 'redisCluster'>) => (config.redisCluster ? `{${config.queuePrefix}}` : config.queuePrefix);

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const v = env[name];
  if (v === undefined || v.trim() === '') throw new ConfigError(name, 'is required but not set');
  return v.trim();
}

function url(env: Env, name: string, protocols: string[], fallback?: string): string {
  const raw = env[name]?.trim() || fallback;
  if (!raw) throw new ConfigError(name, 'is required but not set');
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => p + '//').join(' or ')}`);
  }
  return raw;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

/** A CouchDB database name as CouchDB allows it: a lowercase letter, then lowercase letters, digits and _$()+-/. */
function couchDbName(env: Env, name: string): string {
  const v = env[name]!.trim();
  if (!/^[a-z][a-z0-9_$()+/-]*$/.test(v)) throw new ConfigError(name, `is not a CouchDB database name (a lowercase letter, then a-z 0-9 _$()+-/), got "${v}"`);
  return v;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const logLevel = (env.LOG_LEVEL?.trim() || 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const queuePrefix = env.QUEUE_PREFIX?.trim() || 'mover';
  if (!/^[A-Za-z0-9_.-]+$/.test(queuePrefix)) throw new ConfigError('QUEUE_PREFIX', 'may hold only letters, digits, _ . -');
  const redisCluster = bool(env, 'REDIS_CLUSTER', false);
  // On a cluster the darklaunch hashes would be spread over its nodes, where Chef does not read them.
  if (redisCluster && !env.DARKLAUNCH_REDIS_URL?.trim())
    throw new ConfigError('DARKLAUNCH_REDIS_URL', 'is required when REDIS_CLUSTER is true: the darklaunch Redis is a single server, not the queue cluster');
  return {
    ...(redisCluster ? { redisCluster } : {}),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl,
    darklaunchRedisUrl: url(env, 'DARKLAUNCH_REDIS_URL', ['redis:', 'rediss:'], redisUrl),
    couchdbUrl: url(env, 'COUCHDB_URL', ['http:', 'https:']),
    // Either names the api's operators: the shared token (one operator, "operator"), or the operators file.
    apiToken: env.MOVER_OPERATORS_FILE?.trim() ? (env.MOVER_API_TOKEN?.trim() ?? '') : required(env, 'MOVER_API_TOKEN'),
    ...(env.MOVER_OPERATORS_FILE?.trim() ? { operatorsFile: env.MOVER_OPERATORS_FILE.trim() } : {}),
    port: int(env, 'PORT', 3000, 0, 65535),
    logLevel,
    queuePrefix,
    workerConcurrency: int(env, 'WORKER_CONCURRENCY', 128, 1, 256),
    dryRun: bool(env, 'DRY_RUN', false),
    storeOutageGraceMs: int(env, 'STORE_OUTAGE_GRACE_MS', 60_000, 0, 3_600_000),
    jobLockMs: int(env, 'JOB_LOCK_MS', 30_000, 5_000, 600_000),
    ...(env.METRICS_PORT?.trim() ? { metricsPort: int(env, 'METRICS_PORT', 0, 1, 65535) } : {}),
    ...(env.COUCHDB_ACCOUNT_DB?.trim() ? { couchdbAccountDb: couchDbName(env, 'COUCHDB_ACCOUNT_DB') } : {}),
  };
}

/** For process entry points: load or print one line and exit 1. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`config error: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
