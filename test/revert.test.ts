// Revert loses nothing written since the migration: an org changed on SQL
// (a group created, a container renamed, one deleted, as the Chef API would)
// is refused by default and stays on SQL, up; with write_back the changes go to
// CouchDB in the legacy shape first, so migrating it again gives back exactly
// what SQL held. Against CouchDB with Mango and without (the 1.x proxy).
import nano from 'nano';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { forgetCachedSettings } from '../src/db/settings.js';
import { hex32, type SeededOrg } from '../dev/estate.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { createHarness, describeEachCouch, expectedRows, sqlRows, waitFor, waitForRunEnd, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';
const R = 'phase_2_revert';

describeEachCouch('revert', (couch) => {
  let h: Harness;
  let changed: SeededOrg;
  let untouched: SeededOrg;
  const made = { id: hex32(), authz: hex32(), by: hex32() };

  beforeAll(async () => {
    h = await createHarness(`revert-${couch}`, {}, { couch });
    h.startWorkers();
    [changed, untouched] = await seedReady(h, [{ name: 'rv-changed' }, { name: 'rv-untouched' }]);
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 2 });
    expect(await waitForRunEnd(h)).toMatchObject({ orgs_completed: 2, objects_failed: 0 });
  });
  afterAll(() => h?.close());

  const org = async (name: string) => (await h.api('GET', `/orgs/${name}`)).body;
  const flags = (name: string) => h.ctx.darklaunchRedis.hgetall(`dl_org_${name}`);
  const containers = () => changed.expected.filter((e) => e.table === 'containers');

  it('refuses an org changed on SQL since it migrated: it stays completed, on SQL and up, with the changes listed', async () => {
    // What the Chef API does on SQL after the migration.
    await h.ctx.db.query(
      `INSERT INTO "groups" (id, org_id, authz_id, name, last_updated_by, created_at, updated_at) VALUES ($1, $2, $3, 'made-on-sql', $4, now(), now())`,
      [made.id, changed.guid, made.authz, made.by],
    );
    await h.ctx.db.query(`UPDATE containers SET name = 'renamed-on-sql' WHERE id = $1`, [containers()[0].id]);
    await h.ctx.db.query(`DELETE FROM containers WHERE id = $1`, [containers()[1].id]);
    const before = await sqlRows(h, changed.guid);

    await h.api('PUT', '/settings/drain-wait', { ms: 400, acknowledge_risk: true });
    // The workers read settings through a cache of a second (src/db/settings.ts); they run in this process, so
    // forgetting it here makes the revert's orgs go by the new drain wait, with no second waited out.
    forgetCachedSettings();
    const start = await h.api('POST', `/migrations/${R}/start`, { orgs: ['rv-changed', 'rv-untouched'] });
    expect(start.status).toBe(202);
    // The revert goes dark first and waits the drain wait before it reads or deletes anything.
    await waitFor('rv-untouched dark', async () => (await flags('rv-untouched'))['503_mode'] === 'true', 10_000, 10);
    expect(await sqlRows(h, untouched.guid)).toEqual(expectedRows(untouched));
    const status = await waitForRunEnd(h, R);
    await h.api('PUT', '/settings/drain-wait', { ms: 0, acknowledge_risk: true });
    expect(new Date(status.finished_at ?? '').getTime() - new Date(status.started_at ?? '').getTime()).toBeGreaterThanOrEqual(400);
    expect(status).toMatchObject({ orgs_completed: 2, objects_failed: 1, write_back: false });
    expect(status.not_reverted).toEqual([
      { org_name: 'rv-changed', outcome: 'refused', detail: expect.stringContaining('3 changes made on SQL'), differences: 3 },
    ]);

    const c = await org('rv-changed');
    expect(c.states[T].state).toBe('completed');
    expect(c.darklaunch).toMatchObject({
      couchdb_containers: false,
      couchdb_groups: false,
      '503_mode': false,
      effective: { containers: 'sql', groups: 'sql', down: false },
    });
    expect(c.revert?.differences).toEqual(
      expect.arrayContaining([
        { table: 'groups', id: made.id, change: 'created_on_sql', sql_name: 'made-on-sql' },
        { table: 'containers', id: containers()[0].id, change: 'renamed_on_sql', sql_name: 'renamed-on-sql', couch_name: containers()[0].name },
        { table: 'containers', id: containers()[1].id, change: 'deleted_on_sql', couch_name: containers()[1].name },
      ]),
    );
    expect(await sqlRows(h, changed.guid)).toEqual(before);

    // The org nobody changed was reverted: ready, served from CouchDB, no rows.
    const u = await org('rv-untouched');
    expect(u.states[T].state).toBe('ready');
    expect(u.revert).toMatchObject({ outcome: 'reverted', written_back: 0 });
    expect(await flags('rv-untouched')).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
    expect(await sqlRows(h, untouched.guid)).toEqual({ containers: [], groups: [] });
  });

  it('with write_back, writes the changes to CouchDB in the legacy shape, reverts, and a new migration gives back what SQL held', async () => {
    const before = await sqlRows(h, changed.guid);
    await h.api('POST', `/migrations/${R}/start`, { orgs: ['rv-changed'], write_back: true });
    expect(await waitForRunEnd(h, R)).toMatchObject({ orgs_completed: 1, objects_failed: 0, not_reverted: [] });
    const c = await org('rv-changed');
    expect(c.states[T].state).toBe('ready');
    expect(c.revert).toMatchObject({ outcome: 'reverted', written_back: 4 });
    expect(await flags('rv-changed')).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
    expect(await sqlRows(h, changed.guid)).toEqual({ containers: [], groups: [] });

    const orgDb = nano(h.couchdb.url).use<Record<string, unknown>>(`chef_${changed.guid}`);
    expect(await orgDb.get(made.id)).toMatchObject({
      'couchrest-type': TYPES.group,
      groupname: 'made-on-sql',
      requester_id: made.by,
      orgname: 'rv-changed',
      actor_and_group_names: { users: [], clients: [], groups: [] },
    });
    expect(await orgDb.get(containers()[0].id)).toMatchObject({ containername: 'renamed-on-sql', containerpath: 'renamed-on-sql' });
    await expect(orgDb.get(containers()[1].id)).rejects.toMatchObject({ statusCode: 404 });
    const joins = await nano(h.couchdb.url).use<Record<string, unknown>>(h.couchdb.accountDb).list({ include_docs: true });
    expect(joins.rows.map((r) => r.doc).filter((d) => d?.user_object_id === made.id)).toEqual([
      expect.objectContaining({ json_class: TYPES.authJoin, auth_object_id: made.authz }),
    ]);

    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 2 });
    expect(await waitForRunEnd(h)).toMatchObject({ objects_failed: 0 });
    expect((await org('rv-changed')).states[T].state).toBe('completed');
    expect(await sqlRows(h, changed.guid)).toEqual(before);
  });
});
