// npm run db:migrate [-- --check] — creates or adopts Chef's tables and applies
// mover's schema; with --check, only reports what it would do and changes
// nothing (exit 1 when a Chef table cannot be adopted). Needs only DATABASE_URL.
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { createPool } from '../stores/postgres.js';
import { migrate, planSchema, SchemaIncompatibleError, type SchemaPlan } from '../db/migrate.js';

const check = process.argv.includes('--check');
let databaseUrl: string;
try {
  // Only DATABASE_URL matters here; the rest are filled so the shared parser checks it the same way.
  databaseUrl = loadConfig({
    REDIS_URL: 'redis://unused',
    COUCHDB_URL: 'http://unused',
    MOVER_API_TOKEN: 'unused',
    DATABASE_URL: process.env.DATABASE_URL,
  }).databaseUrl;
} catch (err) {
  process.stderr.write(`config error: ${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(1);
}

/** The database as host/name, never with its password. */
function where(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}${u.pathname}`;
}

function describePlan(plan: SchemaPlan): { lines: string[]; ok: boolean } {
  const lines: string[] = [];
  for (const p of plan.chef) {
    const what = `${p.object.category} ${p.object.name}`.padEnd(28);
    const action = { create: 'create (absent; as Chef defines it)', adopt: 'adopt (exists; left as it is)', incompatible: 'INCOMPATIBLE' }[p.action];
    lines.push(`  ${what} ${action}`);
    for (const problem of p.problems) lines.push(`      problem: ${problem}`);
    for (const note of p.notes) lines.push(`      note: ${note}`);
  }
  lines.push(`  ${'schema mover'.padEnd(28)} ${plan.pending.length ? `apply ${plan.pending.map((m) => m.file).join(', ')}` : 'up to date'}`);
  const ok = plan.chef.every((p) => p.action !== 'incompatible');
  return { lines, ok };
}

// No grace: a schema check or migration run by hand should say at once that the database is not there.
const db = createPool(databaseUrl, { graceMs: 0, log: createLogger(process.env.LOG_LEVEL?.trim().toLowerCase() || 'warn', 'mover-migrate') }, 1);
try {
  if (check) {
    const { lines, ok } = describePlan(await planSchema(db));
    process.stdout.write(`schema check of ${where(databaseUrl)} (nothing changed):\n${lines.join('\n')}\n`);
    process.stdout.write(
      ok
        ? 'result: compatible; `npm run db:migrate` would do the above\n'
        : 'result: INCOMPATIBLE; mover will not start on this database until the problems above are fixed\n',
    );
    if (!ok) process.exitCode = 1;
  } else {
    const r = await migrate(db);
    process.stdout.write(
      `schema of ${where(databaseUrl)}: created ${r.created.join(', ') || 'nothing'}; adopted ${r.adopted.join(', ') || 'nothing'}; ` +
        `${r.applied.length ? `applied mover migrations ${r.applied.join(', ')}` : 'mover schema up to date'}\n`,
    );
  }
} catch (err) {
  const message =
    err instanceof SchemaIncompatibleError ? `${err.message}\nrun \`npm run db:migrate -- --check\` for the whole report` : (err as Error).message;
  process.stderr.write(`db:migrate failed: ${message}\n`);
  process.exitCode = 1;
} finally {
  await db.end();
}
