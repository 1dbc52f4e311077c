// What every process does first: config (or exit 1 naming the variable),
// logger, store connections, and the schema (under the migration lock).
import { loadConfigOrExit } from './config.js';
import { createContext, type Context } from './context.js';
import { migrate } from './db/migrate.js';
import { createLogger } from './log.js';

export async function boot(name: string): Promise<Context> {
  const config = loadConfigOrExit();
  const log = createLogger(config.logLevel, name);
  const ctx = createContext(config, log);
  try {
    await migrate(ctx.db);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot prepare the database schema');
    process.exit(1);
  }
  return ctx;
}
