import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from '../stores/postgres.js';

// Any constant: every process that migrates takes this lock first, so ten
// replicas starting together apply each file once.
const MIGRATION_LOCK = 4_242_001;

function migrationsDir(): string {
  // Works from src/ (tsx, vitest) and from dist/src/ (built): walk up to package.json.
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the migrations folder');
    dir = up;
  }
  return join(dir, 'migrations');
}

/** Applies numbered SQL files not yet applied; returns the versions applied now. */
export async function migrate(db: Db): Promise<number[]> {
  const client = await db.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
    const files = (await readdir(migrationsDir())).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
    for (const file of files) {
      const version = parseInt(file, 10);
      if (done.has(version)) continue;
      const sql = await readFile(join(migrationsDir(), file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [version, file]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`);
      }
      applied.push(version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    client.release();
  }
  return applied;
}
