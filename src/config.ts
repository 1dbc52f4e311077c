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

/** More than one variable missing or bad: every one named at once, not one per start. */
export class ConfigErrors extends ConfigError {
  constructor(readonly problems: ConfigError[]) {
    super(problems[0].variable, problems[0].message.slice(problems[0].variable.length + 2));
    this.message = `${problems.length} settings are missing or bad: ${problems.map((p) => p.message).join('; ')}`;
  }
}

/** Reads every variable, keeping each problem instead of stopping at the first; throws them all together at the end. */
function collector() {
  const problems: ConfigError[] = [];
  return {
    read<T>(f: () => T, fallback: T): T {
      try {
        return f();
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems.push(err);
        return fallback;
      }
    },
    done(): void {
      if (problems.length === 1) throw problems[0];
      if (problems.length > 1) throw new ConfigErrors(problems);
    },
  };
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
  const c = collector();
  const redisUrl = c.read(() => url(env, 'REDIS_URL', ['redis:', 'rediss:']), '');
  const logLevel = (env.LOG_LEVEL?.trim() || 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) c.read(() => fail('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`), undefined);
  const queuePrefix = env.QUEUE_PREFIX?.trim() || 'mover';
  if (!/^[A-Za-z0-9_.-]+$/.test(queuePrefix)) c.read(() => fail('QUEUE_PREFIX', 'may hold only letters, digits, _ . -'), undefined);
  const redisCluster = c.read(() => bool(env, 'REDIS_CLUSTER', false), false);
  // On a cluster the darklaunch hashes would be spread over its nodes, where Chef does not read them.
  if (redisCluster && !env.DARKLAUNCH_REDIS_URL?.trim())
    c.read(
      () => fail('DARKLAUNCH_REDIS_URL', 'is required when REDIS_CLUSTER is true: the darklaunch Redis is a single server, not the queue cluster'),
      undefined,
    );
  const config: Config = {
    ...(redisCluster ? { redisCluster } : {}),
    databaseUrl: c.read(() => url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']), ''),
    redisUrl,
    // Unset, it is REDIS_URL (a missing or bad REDIS_URL is reported once, under its own name).
    darklaunchRedisUrl: env.DARKLAUNCH_REDIS_URL?.trim() ? c.read(() => url(env, 'DARKLAUNCH_REDIS_URL', ['redis:', 'rediss:']), '') : redisUrl,
    couchdbUrl: c.read(() => url(env, 'COUCHDB_URL', ['http:', 'https:']), ''),
    // Either names the api's operators: the shared token (one operator, "operator"), or the operators file.
    apiToken: env.MOVER_OPERATORS_FILE?.trim() ? (env.MOVER_API_TOKEN?.trim() ?? '') : c.read(() => required(env, 'MOVER_API_TOKEN'), ''),
    ...(env.MOVER_OPERATORS_FILE?.trim() ? { operatorsFile: env.MOVER_OPERATORS_FILE.trim() } : {}),
    port: c.read(() => int(env, 'PORT', 3000, 0, 65535), 0),
    logLevel,
    queuePrefix,
    workerConcurrency: c.read(() => int(env, 'WORKER_CONCURRENCY', 256, 1, 1024), 0),
    dryRun: c.read(() => bool(env, 'DRY_RUN', false), false),
    storeOutageGraceMs: c.read(() => int(env, 'STORE_OUTAGE_GRACE_MS', 60_000, 0, 3_600_000), 0),
    jobLockMs: c.read(() => int(env, 'JOB_LOCK_MS', 30_000, 5_000, 600_000), 0),
    ...(env.METRICS_PORT?.trim() ? { metricsPort: c.read(() => int(env, 'METRICS_PORT', 0, 1, 65535), 0) } : {}),
    ...(env.COUCHDB_ACCOUNT_DB?.trim() ? { couchdbAccountDb: c.read(() => couchDbName(env, 'COUCHDB_ACCOUNT_DB'), '') } : {}),
  };
  c.done();
  return config;
}

const fail = (variable: string, problem: string): never => {
  throw new ConfigError(variable, problem);
};

/** For process entry points: load or print one line and exit 1. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigErrors) {
      process.stderr.write(`config error: ${err.problems.length} settings are missing or bad:\n${err.problems.map((p) => `  ${p.message}\n`).join('')}`);
      process.exit(1);
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`config error: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
