// npm run db:migrate [-- --check] on an empty database, on a Chef Server
// database, and on one whose Chef table mover cannot adopt.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

const PG_ADMIN = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const FIXTURE = readFileSync(new URL('./fixtures/chef-database.sql', import.meta.url), 'utf8');
const run = promisify(execFile);
const created: string[] = [];

async function database(sql = ''): Promise<string> {
  const name = `mover_t_schema_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  created.push(name);
  const url = PG_ADMIN.replace(/\/[^/]*$/, `/${name}`);
  if (sql) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(sql);
    await c.end();
  }
  return url;
}

async function dbMigrate(url: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('npx', ['tsx', 'src/cli/db-migrate.ts', ...args], { env: { ...process.env, DATABASE_URL: url } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function relations(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query(`SELECT n.nspname || '.' || c.relname AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                  WHERE n.nspname IN ('public', 'mover') ORDER BY 1`);
  await c.end();
  return rows.map((r) => r.r);
}

afterAll(async () => {
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe('db:migrate', () => {
  it('on an empty database: --check plans to create Chef tables and changes nothing; then it creates them exactly as Chef does', async () => {
    const url = await database();
    const check = await dbMigrate(url, '--check');
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/table containers\s+create/);
    expect(check.stdout).toMatch(/table org_migration_state\s+create/);
    expect(check.stdout).toMatch(/schema mover\s+apply 001_mover_schema.sql, 002_adopt_earlier_layout.sql/);
    expect(check.stdout).not.toContain('postgres@');
    expect(await relations(url)).toEqual([]);

    const apply = await dbMigrate(url);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('created org_state, containers, groups, org_migration_state');
    // Chef's definitions, from a database made with Chef's own scripts (the fixture) ...
    const chef = await database(FIXTURE.slice(0, FIXTURE.indexOf('-- Phase 1 moved')));
    const shape = async (u: string) => {
      const c = new pg.Client({ connectionString: u });
      await c.connect();
      const cols = await c.query(`SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default, ordinal_position
                                  FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 7`);
      const cons = await c.query(`SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS d FROM pg_constraint
                                  WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`);
      const idx = await c.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`);
      await c.end();
      return { cols: cols.rows, cons: cons.rows, idx: idx.rows };
    };
    // ... equal what mover created on the empty one.
    expect(await shape(url)).toEqual(await shape(chef));
    expect((await dbMigrate(url, '--check')).stdout).toMatch(/table containers\s+adopt[\s\S]*schema mover\s+up to date/);
  });

  it('on a Chef Server database: --check plans to adopt all four Chef objects', async () => {
    const url = await database(FIXTURE);
    const before = await relations(url);
    const check = await dbMigrate(url, '--check');
    expect(check.code).toBe(0);
    for (const o of ['type org_state', 'table containers', 'table groups', 'table org_migration_state'])
      expect(check.stdout).toMatch(new RegExp(`${o}\\s+adopt`));
    expect(check.stdout).toContain('result: compatible');
    expect(await relations(url)).toEqual(before);
  });

  it('refuses a Chef table it cannot adopt, naming the table and column, in --check and at start', async () => {
    // A column Chef does not define that mover's inserts would not fill, and the state key gone.
    const bad = `${FIXTURE}
      ALTER TABLE groups ADD COLUMN tenant TEXT NOT NULL DEFAULT 'x';
      ALTER TABLE groups ALTER COLUMN tenant DROP DEFAULT;
      ALTER TABLE org_migration_state DROP CONSTRAINT org_migration_state_pkey;`;
    const url = await database(bad);
    const before = await relations(url);
    const check = await dbMigrate(url, '--check');
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/table groups\s+INCOMPATIBLE/);
    expect(check.stdout).toContain('groups.tenant is NOT NULL without a default');
    expect(check.stdout).toContain('org_migration_state has no unique key on (migration_type, org_id)');
    expect(check.stdout).toContain('result: INCOMPATIBLE');
    const apply = await dbMigrate(url);
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain('groups.tenant is NOT NULL without a default');
    expect(await relations(url)).toEqual(before);
  });

  it("carries an earlier mover layout's per-org progress into schema mover, so its orgs' rows stay mover's", async () => {
    // What mover set up before its bookkeeping moved to schema mover: extra columns in org_migration_state.
    const earlier = `${FIXTURE.slice(0, FIXTURE.indexOf('-- Phase 1 moved'))}
      ALTER TABLE org_migration_state ADD COLUMN run_id BIGINT, ADD COLUMN current_step VARCHAR(50), ADD COLUMN fail_detail TEXT;
      INSERT INTO org_migration_state (org_name, org_id, migration_type, state, run_id, current_step, fail_detail) VALUES
        ('done-org', 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 'phase_2_migration', 'completed', 3, NULL, NULL),
        ('busy-org', 'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2', 'phase_2_migration', 'started', 4, 'migrate', NULL),
        ('bad-org',  'c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3', 'phase_2_migration', 'failed', 4, NULL, 'verify: differs'),
        ('done-org', 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 'phase_1_migration', 'completed', NULL, NULL, NULL);`;
    const url = await database(earlier);
    const check = await dbMigrate(url, '--check');
    expect(check.stdout).toMatch(/org_migration_state.run_id is not in Chef's definition; mover leaves it alone/);
    expect((await dbMigrate(url)).code).toBe(0);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query(
      `SELECT org_name, migration_type, state, run_id::int, current_step, fail_detail, in_flight, rows_in_sql FROM mover.org_progress ORDER BY org_name, migration_type`,
    );
    const counts = await c.query(`SELECT migration_type, state, sum(n)::int AS n FROM mover.org_state_counts GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2`);
    await c.end();
    const p2 = 'phase_2_migration';
    expect(rows).toEqual([
      {
        org_name: 'bad-org',
        migration_type: p2,
        state: 'failed',
        run_id: 4,
        current_step: null,
        fail_detail: 'verify: differs',
        in_flight: false,
        rows_in_sql: false,
      },
      { org_name: 'busy-org', migration_type: p2, state: 'started', run_id: 4, current_step: 'migrate', in_flight: true, rows_in_sql: true, fail_detail: null },
      // Every org gets a progress row with its state (the state mirror, migrations/008), phase 1's too.
      {
        org_name: 'done-org',
        migration_type: 'phase_1_migration',
        state: 'completed',
        run_id: null,
        current_step: null,
        fail_detail: null,
        in_flight: false,
        rows_in_sql: false,
      },
      { org_name: 'done-org', migration_type: p2, state: 'completed', run_id: 3, current_step: null, fail_detail: null, in_flight: false, rows_in_sql: true },
    ]);
    expect(counts.rows).toEqual([
      { migration_type: 'phase_1_migration', state: 'completed', n: 1 },
      { migration_type: p2, state: 'completed', n: 1 },
      { migration_type: p2, state: 'failed', n: 1 },
      { migration_type: p2, state: 'started', n: 1 },
    ]);
  });
});
