// The database schema mover needs, in two parts:
// - Chef Server's objects (org_state, containers, groups, org_migration_state):
//   created from migrations/chef/ only where absent, otherwise adopted as they
//   are once checked (src/db/chef-schema.ts); never altered.
// - mover's own tables, all in schema "mover": the numbered files in
//   migrations/, recorded in mover.schema_migrations; they hold tables,
//   indexes, triggers and data moves only.
// - mover's SQL functions: src/db/functions.sql, each in its current version,
//   applied (CREATE OR REPLACE) on every migrate, before the numbered files.
import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db, DbClient } from '../stores/postgres.js';
import { planChefObjects, type ObjectPlan } from './chef-schema.js';

// Any constant: every process that migrates takes this lock first, so ten
// replicas starting together apply each file once.
const MIGRATION_LOCK = 4_242_001;

export class SchemaIncompatibleError extends Error {
  constructor(readonly problems: string[]) {
    super(`the database has Chef tables mover cannot adopt: ${problems.join('; ')}`);
    this.name = 'SchemaIncompatibleError';
  }
}

export interface SchemaPlan {
  chef: ObjectPlan[];
  /** mover's numbered migrations not yet applied. */
  pending: { version: number; file: string }[];
}

export interface MigrateResult {
  created: string[];
  adopted: string[];
  applied: number[];
}

function packageDir(): string {
  // Works from src/ (tsx, vitest) and from dist/src/ (built): walk up to package.json.
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the package folder (migrations/, src/db/functions.sql)');
    dir = up;
  }
  return dir;
}
const migrationsDir = () => join(packageDir(), 'migrations');
/** Read from the package, not from beside this module: the build (dist/) holds no .sql. */
const functionsFile = () => join(packageDir(), 'src', 'db', 'functions.sql');

async function pendingMigrations(c: DbClient): Promise<SchemaPlan['pending']> {
  const exists = (await c.query(`SELECT to_regclass('mover.schema_migrations') IS NOT NULL AS ok`)).rows[0].ok;
  const done = exists ? new Set((await c.query('SELECT version FROM mover.schema_migrations')).rows.map((r) => Number(r.version))) : new Set<number>();
  const files = (await readdir(migrationsDir())).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  return files.map((file) => ({ version: parseInt(file, 10), file })).filter((m) => !done.has(m.version));
}

/** What migrate() would do, changing nothing: for `npm run db:migrate -- --check`. */
export async function planSchema(db: Db): Promise<SchemaPlan> {
  const client = await db.connect();
  try {
    return { chef: await planChefObjects(client), pending: await pendingMigrations(client) };
  } finally {
    client.release();
  }
}

/** Creates or adopts Chef's objects, then applies mover's pending migrations. Refuses (throws) on an incompatible Chef table. */
export async function migrate(db: Db): Promise<MigrateResult> {
  const client = await db.connect();
  const result: MigrateResult = { created: [], adopted: [], applied: [] };
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const chef = await planChefObjects(client);
    const problems = chef.flatMap((p) => p.problems);
    if (problems.length) throw new SchemaIncompatibleError(problems);
    for (const p of chef) {
      if (p.action === 'adopt') {
        result.adopted.push(p.object.name);
        continue;
      }
      await inOneTransaction(client, await readFile(join(migrationsDir(), 'chef', p.object.file), 'utf8'), `create ${p.object.name}`);
      result.created.push(p.object.name);
    }
    await client.query('CREATE SCHEMA IF NOT EXISTS mover');
    await client.query(
      'CREATE TABLE IF NOT EXISTS mover.schema_migrations (version INT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
    );
    // Bodies unchecked: a function may name a table a pending migration makes (and a trigger a migration makes needs its function).
    const functions = await readFile(functionsFile(), 'utf8');
    await inOneTransaction(client, `SET LOCAL check_function_bodies = off;\n${functions}`, 'src/db/functions.sql');
    for (const m of await pendingMigrations(client)) {
      const sql = await readFile(join(migrationsDir(), m.file), 'utf8');
      await inOneTransaction(client, `${sql};\nINSERT INTO mover.schema_migrations (version, name) VALUES (${m.version}, '${m.file}')`, `migration ${m.file}`);
      result.applied.push(m.version);
    }
  } finally {
    try {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      client.release();
    } catch {
      client.release(true); // a broken connection drops its lock with it
    }
  }
  return result;
}

async function inOneTransaction(client: DbClient, sql: string, what: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(sql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw new Error(`${what} failed: ${(err as Error).message}`);
  }
}
