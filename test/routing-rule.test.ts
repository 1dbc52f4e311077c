// Chef's routing rule end to end (docs/domain.md, "How Chef reads them"): an
// estate whose dl_default has no couchdb_* fields is served from CouchDB, and
// so is an org whose own flags are "0"; phase 1 and a direct run migrate every
// clean org of it, and mover writes only "true" and "false". A dl_* key that
// is not a hash is named by the routing preflight, fails its org at
// preflight untouched, and (dl_default) holds a run's breaker open until it
// is mended. Revert and purge leave alone an org Chef serves from CouchDB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SeededOrg } from '../dev/estate.js';
import { startRun } from '../src/runs/manager.js';
import { createHarness, expectedRows, sqlRows, waitFor, waitForRunEnd, type Harness } from './support/harness.js';
import { waitPhase } from './support/phases.js';
import { refreshCaptureReady } from './support/seed-ready.js';

const T = 'phase_2_migration';
const R = 'phase_2_revert';
let h: Harness;
const dl = () => h.ctx.darklaunchRedis;
const orgs: Record<string, SeededOrg> = {};
const org = async (name: string) => (await h.api('GET', `/orgs/${name}`)).body;
const MIGRATED = { couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' };

beforeAll(async () => {
  // No couchdb_* fields in dl_default: Chef serves every org from CouchDB.
  h = await createHarness('routing-rule', {}, { dlDefault: { some_other_feature: 'true' } });
  h.startWorkers({ phaseTickMs: 200 });
  expect((await h.api('PUT', '/settings/breaker', { cool_down_ms: 200, stable_ms: 300 })).status).toBe(200);
  const names = ['rr-plain', 'rr-zero', 'rr-sql', 'rr-string', 'rr-d1', 'rr-d2', 'rr-d0', 'rr-b1', 'rr-b2', 'rr-b3', 'rr-b4'];
  for (const o of await h.seed(names.map((name) => ({ name, containers: 3, groups: 2 })))) orgs[o.name] = o;
  // Chef reads "0" as CouchDB: this org is still served from CouchDB.
  await dl().hset('dl_org_rr-zero', { couchdb_containers: '0', couchdb_groups: '0' });
  // Served from SQL already, by its own exact "false".
  await dl().hset('dl_org_rr-sql', { couchdb_containers: 'false' });
  // Not a hash: Chef answers 500 for this org.
  await dl().set('dl_org_rr-string', 'couchdb_containers=true');
}, 60_000);
afterAll(() => h?.close());

/** Every routing field of every dl_* hash holds exactly "true" or "false", except the ones a test set by hand. */
async function onlyExactStrings(setByHand: Record<string, Record<string, string>>) {
  for (const key of await dl().keys('dl_*')) {
    if ((await dl().type(key)) !== 'hash') continue;
    const h2 = await dl().hgetall(key);
    for (const f of ['couchdb_containers', 'couchdb_groups', '503_mode'].filter((f) => f in h2)) {
      if (setByHand[key]?.[f] === h2[f]) continue;
      expect(['true', 'false'], `${key}.${f}`).toContain(h2[f]);
    }
  }
}

describe('an estate whose dl_default has no couchdb_* fields', () => {
  it('shows what Chef does with each org beside its raw flags', async () => {
    const zero = (await h.api('GET', '/darklaunch/orgs/rr-zero')).body;
    expect(zero).toEqual({
      org_name: 'rr-zero',
      couchdb_containers: '0',
      couchdb_groups: '0',
      '503_mode': null,
      effective: {
        containers: 'couchdb',
        groups: 'couchdb',
        down: false,
        fields: {
          couchdb_containers: { value: '0', from: 'dl_org_rr-zero' },
          couchdb_groups: { value: '0', from: 'dl_org_rr-zero' },
          '503_mode': { value: null, from: null },
        },
      },
    });
    expect((await h.api('GET', '/darklaunch/orgs/rr-plain')).body).toMatchObject({
      couchdb_containers: null,
      effective: { containers: 'couchdb', groups: 'couchdb', fields: { couchdb_containers: { value: null, from: null } } },
    });
    expect((await h.api('GET', '/darklaunch/orgs/rr-sql')).body.effective).toMatchObject({ containers: 'sql', groups: 'couchdb' });
    expect((await h.api('GET', '/darklaunch/orgs/rr-string')).body).toMatchObject({
      couchdb_containers: null,
      effective: {
        error: 'dl_org_rr-string is a string, not a hash: Chef answers 500 for every request of org rr-string',
        key: 'dl_org_rr-string',
        type: 'string',
      },
    });
    expect((await h.api('GET', '/darklaunch/default')).body).toMatchObject({ couchdb_containers: null, couchdb_groups: null });
  });

  it('phase 1 migrates its clean orgs, including one whose flags are "0"; an org on SQL, or whose key is not a hash, fails at preflight untouched', async () => {
    const start = await h.api('POST', '/phases/1/start', { orgs: ['rr-plain', 'rr-zero', 'rr-sql', 'rr-string'], concurrency: 2 });
    expect(start.status).toBe(202);
    expect((await waitPhase(h, 1, ['completed', 'failed', 'halted'])).state).toBe('completed');
    for (const name of ['rr-plain', 'rr-zero']) {
      const o = await org(name);
      expect(o.states[T].state, name).toBe('completed');
      expect(o.darklaunch.effective, name).toMatchObject({ containers: 'sql', groups: 'sql', down: false });
      expect(await dl().hgetall(`dl_org_${name}`), name).toEqual(MIGRATED);
      expect(await sqlRows(h, orgs[name].guid), name).toEqual(expectedRows(orgs[name]));
    }
    const sql = await org('rr-sql');
    expect(sql.states[T]).toMatchObject({
      state: 'failed',
      fail_location: 'preflight',
      fail_detail: expect.stringContaining('Chef serves it from SQL: couchdb_containers = "false" (dl_org_rr-sql)'),
    });
    expect(await dl().hgetall('dl_org_rr-sql')).toEqual({ couchdb_containers: 'false' });
    const str = await org('rr-string');
    expect(str.states[T]).toMatchObject({
      state: 'failed',
      fail_location: 'preflight',
      fail_detail: expect.stringContaining('dl_org_rr-string is a string, not a hash: Chef answers 500'),
    });
    expect(str.states[T].fail_detail).toContain('redis-cli TYPE dl_org_rr-string');
    expect(await dl().get('dl_org_rr-string')).toBe('couchdb_containers=true');
    for (const name of ['rr-sql', 'rr-string']) expect(await sqlRows(h, orgs[name].guid), name).toEqual({ containers: [], groups: [] });
    // Nothing wrote dl_default.
    expect(await dl().hgetall('dl_default')).toEqual({ some_other_feature: 'true' });
    await onlyExactStrings({ 'dl_org_rr-sql': { couchdb_containers: 'false' } });
  }, 60_000);

  it('a direct run migrates every clean org, "0" flags included', async () => {
    await dl().hset('dl_org_rr-d0', { couchdb_containers: '0', couchdb_groups: '0', '503_mode': '0' });
    const names = ['rr-d1', 'rr-d2', 'rr-d0'];
    await refreshCaptureReady(h.ctx, names);
    expect((await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 3 })).status).toBe(202);
    expect(await waitForRunEnd(h)).toMatchObject({ orgs_completed: 3, objects_failed: 0 });
    for (const name of names) {
      expect((await org(name)).states[T].state, name).toBe('completed');
      expect(await dl().hgetall(`dl_org_${name}`), name).toEqual(MIGRATED);
      expect(await sqlRows(h, orgs[name].guid), name).toEqual(expectedRows(orgs[name]));
    }
    await onlyExactStrings({ 'dl_org_rr-sql': { couchdb_containers: 'false' } });
  });
});

describe('a dl_* key that is not a hash', () => {
  it('is named by the routing preflight, with the commands to inspect it, and nothing starts', async () => {
    const saved = await dl().hgetall('dl_default');
    await dl().del('dl_default');
    await dl().set('dl_default', 'sql');
    await dl().rpush('dl_override', 'couchdb_groups');
    const before = (await h.api('GET', `/migrations/${T}/status`)).body;
    const res = await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    expect(res.status).toBe(409);
    expect(res.body.preflight).toEqual([
      expect.objectContaining({
        key: 'dl_default',
        value: 'string',
        problem: expect.stringContaining('dl_default is a string, not a hash: Chef answers 500 for every request'),
        fix: expect.stringMatching(/redis-cli -h 127\.0\.0\.1 -p \d+ -n \d+ TYPE dl_default and redis-cli .* GET dl_default/),
      }),
      expect.objectContaining({ key: 'dl_override', value: 'list', fix: expect.stringMatching(/TYPE dl_override and .*LRANGE dl_override/) }),
    ]);
    // No run was made: the latest is the one before, as it was.
    expect((await h.api('GET', `/migrations/${T}/status`)).body).toMatchObject({ run_id: before.run_id, state: before.state });
    await dl().del('dl_default', 'dl_override');
    await dl().hset('dl_default', saved);
  });

  it("dl_default turned into a string mid-run opens the run's breaker until it is mended; then every org completes", async () => {
    const names = ['rr-b1', 'rr-b2', 'rr-b3', 'rr-b4'];
    await h.api('POST', `/migrations/${T}/orgs`, { orgs: names });
    await h.api('POST', `/migrations/${T}/ready`, { orgs: names });
    await h.api('PUT', '/settings/drain-wait', { ms: 300, acknowledge_risk: true });
    expect((await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 })).status).toBe(202);
    // One org at a time: once the first is dark, the key breaks under the rest.
    await waitFor('an org dark', async () => (await Promise.all(names.map((n) => dl().hget(`dl_org_${n}`, '503_mode')))).includes('true'), 10_000, 10);
    const saved = await dl().hgetall('dl_default');
    await dl().del('dl_default');
    await dl().set('dl_default', 'oops');
    const open = await waitFor('the breaker open', async () => {
      const s = (await h.api('GET', `/migrations/${T}/status`)).body;
      return s.breaker?.state === 'open' ? s : null;
    });
    expect(open.breaker?.reason).toContain('dl_default is a string, not a hash');
    // Held open while the key is broken, well past the cool-down and the stable time.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await h.api('GET', `/migrations/${T}/status`)).body.breaker?.state).toBe('open');
    await dl().del('dl_default');
    await dl().hset('dl_default', saved);
    const end = await waitForRunEnd(h);
    await h.api('PUT', '/settings/drain-wait', { ms: 0, acknowledge_risk: true });
    expect(end).toMatchObject({ orgs_completed: 4, objects_failed: 0, breaker: { state: 'closed', trips: 1 } });
    for (const name of names) {
      expect((await org(name)).states[T].state, name).toBe('completed');
      expect(await dl().hgetall(`dl_org_${name}`), name).toEqual(MIGRATED);
      expect(await sqlRows(h, orgs[name].guid), name).toEqual(expectedRows(orgs[name]));
    }
  }, 60_000);
});

describe('revert and purge go by the same rule', () => {
  it('a revert refuses a completed org Chef serves from CouchDB, touching nothing of it', async () => {
    await dl().hset('dl_org_rr-d0', { couchdb_groups: '0' });
    const res = await h.api('POST', `/migrations/${R}/start`, { orgs: ['rr-d0'] });
    expect(res.status).toBe(202);
    const end = await waitForRunEnd(h, R);
    expect(end.not_reverted).toEqual([
      expect.objectContaining({
        org_name: 'rr-d0',
        outcome: 'refused',
        detail: expect.stringContaining('Chef serves it from CouchDB: couchdb_groups = "0" (dl_org_rr-d0)'),
      }),
    ]);
    expect((await org('rr-d0')).states[T].state).toBe('completed');
    expect(await dl().hgetall('dl_org_rr-d0')).toEqual({ ...MIGRATED, couchdb_groups: '0' });
    expect(await sqlRows(h, orgs['rr-d0'].guid)).toEqual(expectedRows(orgs['rr-d0']));
  });

  it('the purge leaves the CouchDB documents of an org Chef serves from CouchDB, and purges the others', async () => {
    // Phase 4's step 4.1 runs the purge as a run of its own (it cannot be started through the API).
    expect((await h.api('POST', '/migrations/phase_2_purge/start', { count: 'all' })).status).toBe(409);
    await startRun(h.ctx, 'phase_2_purge', { count: 'all', concurrency: 4 });
    const detail = await waitForRunEnd(h, 'phase_2_purge');
    expect(detail.unverified, JSON.stringify(detail)).toEqual([
      { org: 'rr-d0', reason: expect.stringMatching(/couchdb_groups = "0" \(dl_org_rr-d0\).*its CouchDB documents are live/) },
    ]);
    expect((await org('rr-d0')).states[T].state).toBe('completed');
    const docs = async (o: SeededOrg) => (await fetch(`${h.couchdb.url}/chef_${o.guid}/_all_docs`).then((r) => r.json())).rows.length;
    expect(await docs(orgs['rr-d0'])).toBe(5);
    for (const name of ['rr-plain', 'rr-zero', 'rr-d1', 'rr-d2', 'rr-b1']) {
      expect((await org(name)).states[T].state, name).toBe('purge_successful');
      expect(await docs(orgs[name]), name).toBe(0);
    }
  });
});
