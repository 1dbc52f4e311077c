// One org at a time through phase_2_migration, end state of all three stores
// asserted; and the account refresh. Both run against a CouchDB with Mango
// (PouchDB Server as it is, like 2.x/3.x) and one without (the 1.x proxy).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realCouchVersion } from '../dev/couchdb-server.js';
import { addDocs, hex32 } from '../dev/estate.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { createHarness, describeEachCouch, expectedRows, refreshAccount, sqlRows, waitForRunEnd, type Harness } from './support/harness.js';
import { refreshCaptureReady } from './support/seed-ready.js';

describeEachCouch('migration', (couch) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(`migration-${couch}`, {}, { couch });
    h.startWorkers();
  });
  afterAll(() => h?.close());

  async function migrateOrgs(names: string[]) {
    await refreshCaptureReady(h.ctx, names);
    const start = await h.api('POST', '/migrations/phase_2_migration/start', { count: 'all', concurrency: 4 });
    expect(start.status).toBe(202);
    return waitForRunEnd(h);
  }

  const state = async (name: string) => (await h.api('GET', `/orgs/${name}`)).body;

  describe('phase_2_migration for one org', () => {
    it('moves a clean org: rows equal the CouchDB documents, routed to SQL, up, completed', async () => {
      const [org] = await h.seed([{ name: 'clean-org', otherDocs: 5 }]);
      const status = await migrateOrgs(['clean-org']);
      expect(status).toMatchObject({ orgs_completed: 1, objects_failed: 0, fatal_stop: false });
      expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
      const s = await state('clean-org');
      expect(s.states.phase_2_migration).toMatchObject({ state: 'completed', fail_location: null });
      expect(s.darklaunch).toMatchObject({
        couchdb_containers: false,
        couchdb_groups: false,
        '503_mode': false,
        effective: { containers: 'sql', groups: 'sql', down: false },
      });
    });

    it('skips objects without authz data and migrates the rest', async () => {
      const [org] = await h.seed([{ name: 'no-authz-org', missingAuthz: 3 }]);
      await migrateOrgs(['no-authz-org']);
      const rows = await sqlRows(h, org.guid);
      expect(rows).toEqual(expectedRows(org));
      expect(rows.containers.length + rows.groups.length).toBe(17 - 3);
      expect((await state('no-authz-org')).states.phase_2_migration.state).toBe('completed');
    });

    it('migrates an object created after the account snapshot, finding its authz id in opscode_account', async () => {
      const [org] = await h.seed([{ name: 'late-object-org', containers: 2, groups: 1 }]);
      await refreshAccount(h);
      const lateId = hex32();
      const lateAuthz = hex32();
      await addDocs(h.couchdb.url, `chef_${org.guid}`, [{ _id: lateId, 'couchrest-type': TYPES.group, groupname: 'made-yesterday', requester_id: hex32() }]);
      await addDocs(h.couchdb.url, h.couchdb.accountDb, [{ _id: hex32(), json_class: TYPES.authJoin, user_object_id: lateId, auth_object_id: lateAuthz }]);
      await h.api('POST', '/migrations/phase_2_migration/orgs', { orgs: ['late-object-org'] });
      await h.api('POST', '/migrations/phase_2_migration/ready', { orgs: ['late-object-org'] });
      await h.api('POST', '/migrations/phase_2_migration/start', { count: 'all', concurrency: 4 });
      await waitForRunEnd(h);
      const rows = await sqlRows(h, org.guid);
      expect(rows.groups).toContainEqual({ id: lateId, name: 'made-yesterday', authz_id: lateAuthz });
      expect(rows.containers.length + rows.groups.length).toBe(4);
    });

    it('fails an org whose chef_<guid> database is missing, at migrate, served from CouchDB and not dark', async () => {
      const [org] = await h.seed([{ name: 'no-db-org', noDatabase: true }]);
      const status = await migrateOrgs(['no-db-org']);
      expect(status).toMatchObject({ orgs_completed: 1, objects_failed: 1, fatal_stop: false });
      const s = await state('no-db-org');
      expect(s.states.phase_2_migration).toMatchObject({ state: 'failed', fail_location: 'migrate' });
      expect(s.darklaunch).toMatchObject({
        couchdb_containers: true,
        couchdb_groups: true,
        '503_mode': false,
        effective: { containers: 'couchdb', groups: 'couchdb', down: false },
      });
      expect(await sqlRows(h, org.guid)).toEqual({ containers: [], groups: [] });
    });

    it('applies the messy-data rules: no name, duplicate names, odd names; none crashes the org', async () => {
      const noName = hex32(),
        dupLater = 'ffff' + hex32().slice(4),
        dupFirst = '0000' + hex32().slice(4),
        quoted = hex32(),
        badRequester = hex32();
      const namedGroup = hex32(),
        namedContainer = hex32(),
        onlyName = hex32();
      const extra = [
        { _id: noName, 'couchrest-type': TYPES.container, containername: '  ' },
        { _id: dupFirst, 'couchrest-type': TYPES.group, groupname: 'twins' },
        { _id: dupLater, 'couchrest-type': TYPES.group, groupname: 'twins' },
        { _id: quoted, 'couchrest-type': TYPES.container, containername: `naïve "quoted" 'name' 日本` },
        { _id: badRequester, 'couchrest-type': TYPES.group, groupname: 'no-requester' },
        { _id: hex32(), json_class: 'Chef::Role', name: 'ignored' },
        // The legacy naming rule: a group's name is its groupname, a container's its containername.
        { _id: namedGroup, 'couchrest-type': TYPES.group, groupname: 'by-groupname', name: 'not-this' },
        { _id: namedContainer, 'couchrest-type': TYPES.container, containername: 'by-containername', name: 'not-this-either' },
        // A name field alone is no name.
        { _id: onlyName, 'couchrest-type': TYPES.group, name: 'no-groupname' },
      ];
      const [org] = await h.seed([{ name: 'messy-org', containers: 2, groups: 1, extraDocs: extra }]);
      const joins = [noName, dupFirst, dupLater, quoted, badRequester, namedGroup, namedContainer, onlyName].map((id) => ({
        _id: hex32(),
        json_class: TYPES.authJoin,
        user_object_id: id,
        auth_object_id: hex32(),
      }));
      await addDocs(h.couchdb.url, h.couchdb.accountDb, joins);
      await migrateOrgs(['messy-org']);
      const rows = await sqlRows(h, org.guid);
      const ids = [...rows.containers, ...rows.groups].map((r) => r.id);
      expect(ids).toContain(dupFirst);
      expect(ids).toContain(quoted);
      expect(ids).toContain(badRequester);
      expect(ids).not.toContain(dupLater);
      expect(ids).not.toContain(noName);
      expect(rows.containers.find((r) => r.id === quoted)?.name).toBe(`naïve "quoted" 'name' 日本`);
      expect(rows.groups.find((r) => r.id === namedGroup)?.name).toBe('by-groupname');
      expect(rows.containers.find((r) => r.id === namedContainer)?.name).toBe('by-containername');
      expect(ids).not.toContain(onlyName);
      expect(ids.length).toBe(2 + 1 + 3 + 2);
      const lub = await h.ctx.db.query('SELECT last_updated_by FROM "groups" WHERE id = $1', [badRequester]);
      expect(lub.rows[0].last_updated_by).toBe('0'.repeat(32));
      expect((await state('messy-org')).states.phase_2_migration.state).toBe('completed');
    });

    it('refreshes the account snapshot: orgs, pre-created orgs and AuthJoins; malformed documents skipped', async () => {
      const [a, pre] = await h.seed([
        { name: 'acct-a', containers: 2, groups: 1 },
        { name: 'acct-pre', precreated: true, containers: 1, groups: 0 },
      ]);
      await addDocs(h.couchdb.url, h.couchdb.accountDb, [
        { _id: hex32(), json_class: TYPES.organization, guid: hex32() }, // no name
        { _id: hex32(), json_class: TYPES.organization, name: 'acct-bad-guid', guid: 'nope' },
        { _id: hex32(), json_class: TYPES.authJoin, user_object_id: hex32() }, // no auth_object_id
        { _id: '_design/someone-elses', views: {} },
      ]);
      const before = (await h.api('GET', '/account')).body;
      const snap = await refreshAccount(h);
      expect(snap.state).toBe('idle');
      // Every org and AuthJoin seeded in this file so far, plus the two new orgs; never the malformed ones.
      expect(snap.orgs - before.orgs).toBe(2);
      expect(snap.precreated - before.precreated).toBe(1);
      expect(snap.authz_joins - before.authz_joins).toBe(a.expected.length + pre.expected.length);
      const org = (await h.api('GET', '/orgs/acct-pre')).body;
      expect(org).toMatchObject({ org_id: pre.guid, precreated: true });
      expect((await h.api('GET', '/orgs/acct-bad-guid')).status).toBe(404);
    });

    it('asked the server once what it is, and never sent a Mango request to CouchDB 1.x', async () => {
      const caps = await h.ctx.couch.capabilities();
      expect(caps.mango).toBe(couch !== 'couch1');
      // Whichever release COUCHDB_TEST_URL names (docker compose's couchdb:3), as its welcome says it.
      if (couch === 'couchdb') expect(caps.server).toBe(await realCouchVersion(h.couchdb.url, 'COUCHDB_TEST_URL'));
      if (couch === 'couch1') {
        expect(caps.server).toBe('CouchDB 1.6.1');
        expect(h.couch1!.refused).toEqual([]);
        // Live AuthJoin look-ups went through mover's view in opscode_account.
        const ddoc = await fetch(`${h.couchdb.url}/${h.couchdb.accountDb}/_design/mover`).then((r) => r.json());
        expect(Object.keys(ddoc.views)).toEqual(['authz_by_object']);
      }
    });
  });
});
