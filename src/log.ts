import { pino, type Logger } from 'pino';

// Redaction is belt and braces: nothing should put a token or a URL with a
// password into a log line, but if it does, pino blanks it.
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: ['token', 'password', 'apiToken', 'req.headers.authorization', 'headers.authorization', '*.password', 'config.apiToken'],
      censor: '[redacted]',
    },
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
