// What every process does first: config (or exit 1 naming the variable),
// logger, store connections, and the schema (under the migration lock).
import { loadConfigOrExit } from './config.js';
import { createContext, type Context } from './context.js';
import { migrate } from './db/migrate.js';
import { createLogger, secretsOf } from './log.js';

export async function boot(name: string): Promise<Context> {
  const config = loadConfigOrExit();
  const log = createLogger(config.logLevel, name, secretsOf(config));
  // The last line of defence for "no process dies because a store went away":
  // a promise some library rejected with nobody listening is logged, not fatal.
  process.on('unhandledRejection', (reason) =>
    log.error(
      { err: reason instanceof Error ? reason.message : String(reason), stack: reason instanceof Error ? reason.stack : undefined },
      'unhandled rejection (a bug to fix); process carries on',
    ),
  );
  const ctx = createContext(config, log);
  try {
    await migrate(ctx.db);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot prepare the database schema');
    process.exit(1);
  }
  return ctx;
}
