// The estate survey (docs/domain.md, "The estate survey") on each CouchDB:
// every finding on an estate made to hold each one, the totals, the window
// estimate's inputs, and the proof that it is read-only: CouchDB, Chef's
// tables and the darklaunch Redis byte-for-byte as they were.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addDocs, hex32, type SeededOrg } from '../dev/estate.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { createHarness, describeEachCouch, refreshAccount, type Harness } from './support/harness.js';
import type { SurveyView } from '../src/cli/replies.js';
import { estateState, surveyEnd } from './support/survey.js';

const C = TYPES.container;
const G = TYPES.group;
const join = (objectId: string, authzId = hex32()) => ({ _id: hex32(), json_class: TYPES.authJoin, user_object_id: objectId, auth_object_id: authzId });

describeEachCouch('the estate survey', (couch) => {
  let h: Harness;
  const orgs: Record<string, SeededOrg> = {};
  let before: Awaited<ReturnType<typeof estateState>>;
  let survey: SurveyView;
  const ours = (name: string) => h.api('GET', `/survey/orgs?limit=100`).then((r) => r.body.orgs.find((o) => o.org_name === name));
  /** An org the survey must have found. */
  const found = async (name: string) => {
    const org = await ours(name);
    if (!org) throw new Error(`${name} is not on the survey's first page`);
    return org;
  };

  beforeAll(async () => {
    h = await createHarness(`survey-${couch}`, {}, { couch });
    const dupA = 'zz-dup-authz-a';
    const sharedAuthz = hex32();
    const seeded = await h.seed([
      ...['sv-clean-0', 'sv-clean-1', 'sv-clean-2', 'sv-clean-3'].map((name) => ({ name, otherDocs: 2 })),
      {
        name: 'sv-messy',
        missingAuthz: 1,
        otherDocs: 3,
        extraDocs: [
          { _id: 'zz-no-name', 'couchrest-type': C, requester_id: hex32() },
          { _id: 'zz-dup-name', 'couchrest-type': C, containername: 'cookbooks', requester_id: hex32() },
          { _id: `zz${'x'.repeat(38)}`, 'couchrest-type': C, containername: 'long-id' },
          { _id: dupA, 'couchrest-type': G, groupname: 'extra-a', requester_id: hex32() },
          { _id: 'zz-dup-authz-b', 'couchrest-type': G, groupname: 'extra-b', requester_id: hex32() },
          { _id: 'zz-no-requester', 'couchrest-type': C, containername: 'unowned' },
          { _id: 'zz-late-group', 'couchrest-type': G, groupname: 'made-yesterday', requester_id: hex32() },
        ],
      },
      { name: 'sv-nodb', noDatabase: true },
      ...['sv-onsql', 'sv-split', 'sv-odd', 'sv-string', 'sv-dark', 'sv-foreign', 'sv-migrated'].map((name) => ({ name, containers: 3, groups: 2 })),
      { name: 'sv-pre', precreated: true },
    ]);
    for (const o of seeded) orgs[o.name] = o;
    await addDocs(h.couchdb.url, h.couchdb.accountDb, [
      join('zz-no-name'),
      join('zz-dup-name'),
      join(dupA, sharedAuthz),
      join('zz-dup-authz-b', sharedAuthz),
      join('zz-no-requester'),
    ]);
    h.startWorkers();
    await refreshAccount(h);
    // Newer than the snapshot: found in opscode_account, as the migration finds it, so not skipped.
    await addDocs(h.couchdb.url, h.couchdb.accountDb, [join('zz-late-group')]);
    const dl = h.ctx.darklaunchRedis;
    await dl.hset('dl_org_sv-onsql', { couchdb_containers: 'false', couchdb_groups: 'false' });
    await dl.hset('dl_org_sv-split', { couchdb_containers: 'false', couchdb_groups: 'true' });
    await dl.hset('dl_org_sv-odd', { couchdb_containers: 'true', couchdb_groups: '0' });
    await dl.set('dl_org_sv-string', 'couchdb_containers=false');
    await dl.hset('dl_org_sv-dark', { '503_mode': 'true' });
    const foreign = orgs['sv-foreign'].guid;
    await h.ctx.db.query(
      `INSERT INTO containers (id, org_id, authz_id, name, last_updated_by, created_at, updated_at) VALUES ($1, $2, $3, 'made-on-sql', $4, now(), now())`,
      [hex32(), foreign, hex32(), hex32()],
    );
    const migrated = orgs['sv-migrated'];
    await h.ctx.db.query(`INSERT INTO org_migration_state (org_name, org_id, state, migration_type) VALUES ($1, $2, 'completed', 'phase_2_migration')`, [
      migrated.name,
      migrated.guid,
    ]);
    before = await estateState(
      h,
      seeded.map((o) => o.guid),
    );
    const start = await h.api('POST', '/survey/start', {});
    expect(start.status, JSON.stringify(start.body)).toBe(202);
    expect(start.body.orgs).toBe(13);
    survey = await surveyEnd(h);
  }, 120_000);
  afterAll(() => h?.close());

  it('surveys every org but the pre-created one, and leaves CouchDB, Chef’s tables and the darklaunch Redis byte-for-byte as they were', async () => {
    expect(survey).toMatchObject({ state: 'completed', orgs_surveyed: 13, orgs_total: 13 });
    expect(survey.finished_at).toEqual(expect.any(String));
    expect(await ours('sv-pre')).toBeUndefined();
    expect(
      await estateState(
        h,
        Object.values(orgs).map((o) => o.guid),
      ),
    ).toEqual(before);
  });

  it('names each document a messy-data rule would skip, by the migration’s own rules', async () => {
    const messy = await found('sv-messy');
    expect(messy).toMatchObject({ containers: 16, groups: 8, documents: 12 + 5 + 3 + 7, migration_state: null, served_from: 'couchdb', refusal: null });
    expect(messy.findings.sort()).toEqual(['bad_id', 'duplicate_authz', 'duplicate_name', 'missing_authz', 'no_name', 'no_requester']);
    expect(messy.detail.skipped_by_rule).toEqual({ missing_authz: 1, no_name: 1, duplicate_name: 1, duplicate_authz: 1, bad_id: 1 });
    expect(messy.detail.skipped).toEqual(
      expect.arrayContaining([
        { doc_id: 'zz-no-name', table: 'containers', rule: 'no_name' },
        { doc_id: 'zz-dup-name', table: 'containers', rule: 'duplicate_name', kept_doc_id: expect.any(String) },
        { doc_id: 'zz-dup-authz-b', table: 'groups', rule: 'duplicate_authz', kept_doc_id: 'zz-dup-authz-a' },
        { doc_id: `zz${'x'.repeat(38)}`, table: 'containers', rule: 'bad_id' },
        { doc_id: orgs['sv-messy'].skippedIds[0], table: 'containers', rule: 'missing_authz' },
      ]),
    );
    expect((messy.detail.skipped as { doc_id: string }[]).map((s) => s.doc_id)).not.toContain('zz-late-group');
    expect(messy.bytes).toBeGreaterThan(1000);
    const clean = await found('sv-clean-0');
    expect(clean).toMatchObject({
      containers: 12,
      groups: 5,
      documents: 19,
      findings: [],
      refusal: null,
      served_from: 'couchdb',
      sql_rows: 0,
      foreign_rows: 0,
    });
    expect(clean.copy_ms).toEqual(expect.any(Number));
  });

  it('finds the missing database, the routing anomalies, dl_* keys Chef cannot read and odd values, rows mover did not write, and why the preflight would refuse', async () => {
    expect(await ours('sv-nodb')).toMatchObject({ findings: ['missing_database'], containers: null, documents: null, refusal: null });
    const onSql = await found('sv-onsql');
    expect(onSql).toMatchObject({ served_from: 'sql', findings: ['on_sql_unmigrated', 'preflight_refused'] });
    expect(onSql.refusal).toMatch(/Chef serves it from SQL: couchdb_containers = "false" \(dl_org_sv-onsql\)/);
    expect(await ours('sv-split')).toMatchObject({ served_from: 'split', findings: ['split_routing', 'on_sql_unmigrated', 'preflight_refused'] });
    const odd = await found('sv-odd');
    expect(odd).toMatchObject({ served_from: 'couchdb', findings: ['dl_odd_value'], refusal: null });
    expect(odd.detail.darklaunch).toEqual(['dl_org_sv-odd couchdb_groups = "0"']);
    const str = await found('sv-string');
    expect(str).toMatchObject({ served_from: null, findings: ['dl_not_hash', 'preflight_refused'] });
    expect(str.refusal).toMatch(/dl_org_sv-string is a string, not a hash/);
    expect(await ours('sv-dark')).toMatchObject({ served_from: 'couchdb', findings: ['dark_now'], refusal: null });
    const foreign = await found('sv-foreign');
    expect(foreign).toMatchObject({ sql_rows: 1, foreign_rows: 1, findings: ['foreign_rows', 'preflight_refused'] });
    expect(foreign.refusal).toMatch(/SQL already holds 1 containers\/groups rows for this org that mover did not write/);
    expect(await ours('sv-migrated')).toMatchObject({ migration_state: 'completed', served_from: 'couchdb', findings: ['on_couchdb_migrated'], refusal: null });
  });

  it('counts orgs by finding and documents skipped by rule, and estimates the window from the copy times it measured, with its inputs', async () => {
    expect(survey.totals).toEqual({
      missing_database: 1,
      unreadable_database: 0,
      missing_authz: 1,
      no_name: 1,
      duplicate_name: 1,
      duplicate_authz: 1,
      bad_id: 1,
      no_requester: 1,
      on_sql_unmigrated: 2,
      on_couchdb_migrated: 1,
      split_routing: 1,
      dark_now: 1,
      dl_not_hash: 1,
      dl_odd_value: 1,
      foreign_rows: 1,
      preflight_refused: 4,
    });
    expect(survey.skipped_documents).toEqual({ missing_authz: 1, no_name: 1, duplicate_name: 1, duplicate_authz: 1, bad_id: 1 });
    expect(survey.largest[0]).toMatchObject({ org_name: 'sv-messy', documents: 27 });
    expect(survey.largest).toHaveLength(10);
    // Still to migrate: the 4 clean orgs, the messy one, the odd one and the dark one (not migrated, read, not refused).
    const e = (await h.api('GET', '/survey?concurrency=10&drain_wait_ms=5000&sleep_time_ms=0')).body.estimate;
    expect(e).toMatchObject({ concurrency: 10, drain_wait_ms: 5000, inputs: { orgs: 7, sleep_time_ms: 0, pacing_window_ms: 5000, bound_by: 'cycle' } });
    expect(e.inputs.copy_ms_mean).toBeCloseTo(e.inputs.copy_ms_total / 7, 1);
    expect(e.seconds).toBeCloseTo((7 * (Number(e.inputs.copy_ms_mean) + 5000)) / 10 / 1000, 1);
    // A sleep time longer than the cycle bounds it instead.
    const paced = (await h.api('GET', '/survey?concurrency=7&drain_wait_ms=5000&sleep_time_ms=60000')).body.estimate;
    expect(paced).toMatchObject({ seconds: 60, inputs: { bound_by: 'pacing', pacing_window_ms: 60_000 } });
    // By default: the current settings (the harness's drain wait is 0) and the migration's concurrency.
    expect(survey.estimate).toMatchObject({ concurrency: 8, drain_wait_ms: 0, inputs: { orgs: 7, sleep_time_ms: 0 } });
  });
});
