// mover on a Chef Server database as it stands in production (fixture:
// test/fixtures/chef-database.sql): it adopts Chef's tables without changing
// them, runs the whole runbook, a revert and the purge on top, and leaves
// every row it did not write byte-for-byte as it was.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, expectedRows, sqlRows, waitForRunEnd, type Harness } from './support/harness.js';
import { runPhases1And2, waitPhase } from './support/phases.js';
import type { SeededOrg } from '../dev/estate.js';
import type pg from 'pg';
import type { Db, DbClient } from '../src/stores/postgres.js';
import * as objects from '../src/db/org-objects.js';

const FIXTURE = readFileSync(new URL('./fixtures/chef-database.sql', import.meta.url), 'utf8');
const ZERO = '0'.repeat(32);
const SQL_BORN = 'e5'.repeat(16);

let h: Harness;
let orgs: SeededOrg[];
let before: Awaited<ReturnType<typeof foreignState>>;

/** Everything mover must not touch: Chef's definitions, rows of other orgs and other migration types. */
async function foreignState(db: Db) {
  const q = async (sql: string, params: unknown[] = []) => (await db.query(sql, params)).rows.map((r) => Object.values(r).join('|'));
  return {
    columns: await q(`SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default FROM information_schema.columns
                      WHERE table_schema = 'public' AND table_name IN ('containers', 'groups', 'org_migration_state') ORDER BY 1, 2`),
    constraints: await q(`SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                          WHERE conrelid IN ('containers'::regclass, 'groups'::regclass, 'org_migration_state'::regclass) ORDER BY 1, 2`),
    indexes: await q(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`),
    publicRelations: await q(`SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY relname`),
    enum: await q(`SELECT enumlabel FROM pg_enum WHERE enumtypid = 'org_state'::regtype ORDER BY enumsortorder`),
    foreignRows: await q(
      `SELECT 'c', t::text FROM containers t WHERE org_id IN ($1, $2) UNION ALL SELECT 'g', t::text FROM "groups" t WHERE org_id IN ($1, $2) ORDER BY 1, 2`,
      [ZERO, SQL_BORN],
    ),
    phase1Rows: await q(`SELECT t::text FROM org_migration_state t WHERE migration_type <> 'phase_2_migration' ORDER BY org_id`),
  };
}

beforeAll(async () => {
  h = await createHarness(
    'chefdb',
    {},
    {
      preloadSql: FIXTURE,
      // What mover finds before its schema is applied.
      beforeMigrate: async (db) => {
        before = await foreignState(db);
      },
    },
  );
  orgs = await h.seed([
    { name: 'chef-alpha', guid: 'a1'.repeat(16) },
    { name: 'chef-beta', guid: 'b2'.repeat(16) },
    { name: 'chef-gamma', guid: 'c3'.repeat(16) },
    { name: 'chef-delta', guid: 'd4'.repeat(16) },
    // Made on SQL after dl_default flipped: in opscode_account, no CouchDB data of its own.
    { name: 'chef-epsilon', guid: SQL_BORN, noDatabase: true },
    { name: 'chef-precreated', precreated: true },
  ]);
  h.startWorkers();
});
afterAll(() => h?.close());

describe('a Chef Server database', () => {
  it('is adopted as it is: Chef objects unchanged, mover tables only in schema mover', async () => {
    expect(await foreignState(h.ctx.db)).toEqual(before);
    expect(before.publicRelations).toEqual([
      'containers|r',
      'containers_authz_id_key|i',
      'containers_org_id_name_key|i',
      'containers_pkey|i',
      'groups|r',
      'groups_authz_id_key|i',
      'groups_org_id_name_key|i',
      'groups_pkey|i',
      'org_migration_state|r',
      'org_migration_state_id_seq|S',
      'org_migration_state_name_idx|i',
      'org_migration_state_pkey|i',
    ]);
    const { rows } = await h.ctx.db.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'mover'`);
    expect(rows[0].n).toBeGreaterThanOrEqual(10);
  });

  it('runs the four phases, a revert and the purge, and leaves every row it did not write byte-for-byte as it was', async () => {
    await h.ctx.db.query(`INSERT INTO mover.settings (key, value) VALUES ('drainWaitMs', '0') ON CONFLICT (key) DO UPDATE SET value = '0'`);
    await runPhases1And2(h, ['chef-alpha']);
    // The SQL-born org was neither pinned to CouchDB nor captured by the prep pass.
    expect(await h.ctx.darklaunchRedis.exists('dl_org_chef-epsilon')).toBe(0);
    expect((await h.api('GET', '/orgs/chef-epsilon')).body.states).toEqual({});

    expect((await h.api('POST', '/phases/3/start', { concurrency: 2, sleep_time_ms: 0 })).status).toBe(202);
    expect((await waitPhase(h, 3, ['completed', 'failed', 'halted'])).state).toBe('completed');
    for (const org of orgs.filter((o) => o.name.match(/alpha|beta|gamma|delta/))) expect(await sqlRows(h, org.guid), org.name).toEqual(expectedRows(org));

    const revert = await h.api('POST', '/migrations/phase_2_revert/start', { orgs: ['chef-beta'] });
    expect(revert.status).toBe(202);
    // Said in full if it did not revert: once in a loaded full-suite run the org was left on SQL, completed (not reproduced alone).
    const reverted = await waitForRunEnd(h, 'phase_2_revert');
    expect(reverted, JSON.stringify(reverted)).toMatchObject({ state: 'completed', orgs_completed: 1, objects_failed: 0, not_reverted: [] });
    expect(await sqlRows(h, 'b2'.repeat(16))).toEqual({ containers: [], groups: [] });

    expect((await h.api('POST', '/phases/4/start', { confirm: 'purge-couchdb-data' })).status).toBe(202);
    expect((await waitPhase(h, 4, ['completed', 'failed', 'halted'])).state).toBe('completed');

    const { rows } = await h.ctx.db.query(`SELECT org_name, state::text FROM org_migration_state WHERE migration_type = 'phase_2_migration' ORDER BY org_name`);
    expect(rows).toEqual([
      { org_name: 'chef-alpha', state: 'purge_successful' },
      { org_name: 'chef-beta', state: 'ready' },
      { org_name: 'chef-delta', state: 'purge_successful' },
      { org_name: 'chef-gamma', state: 'purge_successful' },
    ]);
    expect(await foreignState(h.ctx.db)).toEqual(before);
  });

  it('refuses to migrate an org whose containers and groups are already in SQL, and touches nothing of it', async () => {
    const captured = await h.api('POST', '/migrations/phase_2_migration/orgs', { orgs: ['chef-epsilon'] });
    expect(captured.body.inserted).toEqual(['chef-epsilon']);
    await h.api('POST', '/migrations/phase_2_migration/ready', { orgs: ['chef-epsilon'] });
    // Even pinned to CouchDB by hand, its SQL rows are not mover's to replace.
    await h.ctx.darklaunchRedis.hset('dl_org_chef-epsilon', { couchdb_containers: 'true', couchdb_groups: 'true' });
    await h.api('POST', '/migrations/phase_2_migration/start', { count: 'all', concurrency: 1 });
    expect(await waitForRunEnd(h)).toMatchObject({ objects_failed: 1, fatal_stop: false });
    const s = (await h.api('GET', '/orgs/chef-epsilon')).body;
    expect(s.states.phase_2_migration).toMatchObject({ state: 'failed', fail_location: 'preflight', fail_detail: expect.stringContaining('did not write') });
    expect(s.darklaunch).toMatchObject({
      couchdb_containers: true,
      couchdb_groups: true,
      '503_mode': null,
      effective: { containers: 'couchdb', groups: 'couchdb', down: false },
    });
    expect(await foreignState(h.ctx.db)).toEqual(before);
  });

  it('fails, untouched, an org Chef already serves from SQL', async () => {
    await h.ctx.db.query(`UPDATE org_migration_state SET state = 'ready' WHERE org_name = 'chef-beta' AND migration_type = 'phase_2_migration'`);
    // dl_default is false since step 2.6; the revert pinned chef-beta to CouchDB: take its own flags away.
    await h.ctx.darklaunchRedis.del('dl_org_chef-beta');
    const rowsBefore = await sqlRows(h, 'b2'.repeat(16));
    await h.api('POST', '/migrations/phase_2_migration/start', { count: 'all', concurrency: 1 });
    await waitForRunEnd(h);
    const s = (await h.api('GET', '/orgs/chef-beta')).body;
    expect(s.states.phase_2_migration).toMatchObject({
      state: 'failed',
      fail_location: 'preflight',
      fail_detail: expect.stringContaining('couchdb_containers = "false" (dl_default)'),
    });
    expect(await h.ctx.darklaunchRedis.exists('dl_org_chef-beta')).toBe(0);
    // Never started: whatever SQL held for it (here, rows of the run before) stays as it was.
    expect(await sqlRows(h, 'b2'.repeat(16))).toEqual(rowsBefore);
  });

  it("reaches an org's rows in Chef's tables through their (org_id, name) index, never a scan of the whole table", async () => {
    // Chef's org_id is CHAR(32): compared as text, PostgreSQL could not use the index.
    const statements: { text: string; values?: unknown[] }[] = [];
    // A client with only query(), which is all the functions below call: it records each statement to plan below.
    const capture = {
      query: async (a: string | pg.QueryConfig, b?: unknown[]) => {
        statements.push(typeof a === 'string' ? { text: a, values: b } : { text: a.text, values: a.values });
        return { rows: [{ foreign_rows: 0, n: 0, t: 'containers' }], rowCount: 0 };
      },
    } as unknown as DbClient;
    const org = orgs[0].guid;
    // replaceOrgObjects calls mover.replace_org_objects, and foreignRowCount and the claim mover.foreign_row_count,
    // whose statements EXPLAIN cannot see into: their every comparison on org_id casts to bpchar, and those
    // statements are planned here as they run them.
    for (const [fn, n] of [
      ['replace_org_objects', 4],
      ['foreign_row_count', 2],
    ] as const) {
      const src = (await h.ctx.db.query(`SELECT prosrc FROM pg_proc WHERE proname = $1`, [fn])).rows[0].prosrc as string;
      expect(src.match(/FROM (containers|"groups") WHERE org_id = p_org_id::bpchar/g), fn).toHaveLength(n);
      expect(src.match(/FROM (containers|"groups") WHERE/g), fn).toHaveLength(n);
    }
    for (const t of ['containers', '"groups"']) {
      statements.push({ text: `DELETE FROM ${t} WHERE org_id = $1::bpchar`, values: [org] });
      statements.push({ text: `SELECT count(*) FROM ${t} WHERE org_id = $1::bpchar`, values: [org] });
    }
    await objects.deleteOwnedOrgObjects(capture, 'phase_2_migration', org);
    await objects.readAllObjects(capture, org);
    await objects.orgsWithSqlRows(capture, [org]);
    const client = await h.ctx.db.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL enable_seqscan = off'); // where an index can serve, the planner must now take it
      for (const st of statements) {
        const plan = (await client.query({ text: `EXPLAIN ${st.text}`, values: st.values })).rows.map((r) => r['QUERY PLAN'] as string).join('\n');
        expect(plan, st.text).not.toMatch(/Seq Scan on (containers|groups)/);
        expect(plan, st.text).toMatch(/(containers|groups)_org_id_name_key/);
      }
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
