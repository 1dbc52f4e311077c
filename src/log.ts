import { pino, type Logger } from 'pino';

// No log line, at any level, may carry the API token or a store's password.
// Nothing should put them there; if something does (a URL with ?token=, an
// error quoting a connection string), every string of every line is scrubbed
// before it is written: the known secrets and any token query parameter.
const CENSOR = '[redacted]';

/** The secrets of a config: the API token and the password of each store URL, as written and decoded. */
export function secretsOf(config: { apiToken: string; databaseUrl: string; redisUrl: string; darklaunchRedisUrl: string; couchdbUrl: string }): string[] {
  const out = [config.apiToken];
  for (const u of [config.databaseUrl, config.redisUrl, config.darklaunchRedisUrl, config.couchdbUrl]) {
    // Config has validated every URL already; one that does not parse has no password to hide.
    const password = URL.canParse(u) ? new URL(u).password : '';
    if (password) out.push(password, decodeURIComponent(password));
  }
  return [...new Set(out.filter((s) => s.length >= 4))];
}

export function scrubber(secrets: string[]): (s: string) => string {
  return (s) => {
    let out = s.replace(/([?&](?:token|access_token)=)[^&\s"']*/gi, `$1${CENSOR}`);
    for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(CENSOR);
    return out;
  };
}

export function createLogger(level: string, name: string, secrets: string[] = []): Logger {
  const scrub = scrubber(secrets);
  return pino({
    name,
    level,
    redact: {
      paths: [
        'token',
        'password',
        'apiToken',
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        'headers.cookie',
        '*.password',
        'config.apiToken',
      ],
      censor: CENSOR,
    },
    // The finished line, after every serializer ran (Fastify's request serializer writes the URL): nothing gets past this.
    hooks: { streamWrite: (line) => scrub(line) },
  });
}

/** A child logger for one org: every line about an org carries these two fields. */
export function orgLogger(log: Logger, orgName: string, migrationType: string): Logger {
  return log.child({ org_name: orgName, migration_type: migrationType });
}

/**
 * Waits for all of them (closing connections at shutdown, say) and logs each
 * one that failed: Promise.allSettled alone would drop those errors.
 */
export async function settleAll(log: Logger, what: string, tasks: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(tasks);
  for (const r of results) if (r.status === 'rejected') log.warn({ err: r.reason instanceof Error ? r.reason.message : String(r.reason) }, `${what} failed`);
}
