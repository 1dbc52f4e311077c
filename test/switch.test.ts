// The 503 switch: how many orgs are dark at once, and writes that land in
// CouchDB after the copy read the org (requests the Chef API accepted just
// before 503 went up). Against CouchDB with Mango and without (the 1.x proxy).
import { setTimeout as sleep } from 'node:timers/promises';
import nano from 'nano';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { forgetCachedSettings } from '../src/db/settings.js';
import { hex32, type SeededOrg } from '../dev/estate.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { afterCopyRead } from '../src/jobs/phase_2_migration.js';
import { createHarness, describeEachCouch, sqlRows, waitFor, waitForRunEnd, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';

describeEachCouch('switch', (couch) => {
  let h: Harness;
  let batch = 0;
  beforeAll(async () => {
    h = await createHarness(`switch-${couch}`, {}, { couch });
    // Two worker processes, eight slots between them.
    h.startWorkers({ concurrency: 4 });
    h.startWorkers({ concurrency: 4 });
  });
  afterAll(() => h?.close());

  async function readyOrgs(n: number, otherDocs = 0): Promise<SeededOrg[]> {
    batch++;
    return seedReady(
      h,
      Array.from({ length: n }, (_, i) => ({ name: `s${batch}-org-${i}`, containers: 3, groups: 2, otherDocs })),
    );
  }

  /**
   * Sets the drain wait, and forgets the workers' 1 s settings cache (src/db/settings.ts), so the next org goes
   * by it: both worker fleets run in this process, so the reset reaches them, with no second waited out.
   */
  const setDrainWait = async (ms: number) => {
    expect((await h.api('PUT', '/settings/drain-wait', { ms, acknowledge_risk: true })).status).toBe(200);
    forgetCachedSettings();
  };
  const flags = (org: SeededOrg) => h.ctx.darklaunchRedis.hgetall(`dl_org_${org.name}`);

  /**
   * What Chef API requests accepted just before 503 do: once the org is
   * dark, they write one container (its AuthJoin first, as opscode-account
   * did) and keep renaming it, one write after another, until `stop()` says so.
   */
  async function lateWriter(org: SeededOrg, stop: (startedAt: number) => boolean) {
    const orgDb = nano(h.couchdb.url).use<Record<string, unknown>>(`chef_${org.guid}`);
    await waitFor('503 up', async () => (await h.ctx.darklaunchRedis.hget(`dl_org_${org.name}`, '503_mode')) === 'true', 20_000, 5);
    const startedAt = Date.now();
    const id = hex32();
    const authzId = hex32();
    await nano(h.couchdb.url)
      .use<Record<string, unknown>>(h.couchdb.accountDb)
      .insert({ _id: hex32(), json_class: TYPES.authJoin, user_object_id: id, auth_object_id: authzId });
    let rev: string | undefined;
    let n = 0;
    do {
      n++;
      rev = (
        await orgDb.insert({ _id: id, ...(rev ? { _rev: rev } : {}), 'couchrest-type': TYPES.container, containername: `late-${n}`, requester_id: hex32() })
      ).rev;
    } while (!stop(startedAt));
    return { id, authzId, writes: n };
  }

  it('never has more orgs dark at once than the concurrency, across two worker processes; status shows them', async () => {
    const orgs = await readyOrgs(10);
    await setDrainWait(300);
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 2 });
    let maxDark = 0;
    let maxReported = 0;
    for (;;) {
      const [status, dark] = await Promise.all([
        h.api('GET', `/migrations/${T}/status`).then((r) => r.body),
        Promise.all(orgs.map(async (o) => (await h.ctx.darklaunchRedis.hget(`dl_org_${o.name}`, '503_mode')) === 'true')),
      ]);
      maxDark = Math.max(maxDark, dark.filter(Boolean).length);
      maxReported = Math.max(maxReported, status.orgs_dark ?? 0);
      if (status.state === 'completed') break;
      await sleep(20);
    }
    await setDrainWait(0);
    expect(maxDark).toBe(2);
    expect(maxReported).toBeGreaterThanOrEqual(1);
    expect(maxReported).toBeLessThanOrEqual(2);
    const status = (await h.api('GET', `/migrations/${T}/status`)).body;
    expect(status).toMatchObject({ orgs_completed: 10, objects_failed: 0, orgs_dark: 0 });
    for (const o of orgs) expect(await flags(o)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
  });

  it("copies an org while it is still up, then keeps it dark for the drain wait and its catch-up; each org's dark time and the run's are recorded", async () => {
    const orgs = await readyOrgs(4);
    await setDrainWait(400);
    const darkAtCopy: string[] = [];
    afterCopyRead.hook = async (ref) => {
      if (orgs.some((o) => o.name === ref.orgName)) darkAtCopy.push(String(await h.ctx.darklaunchRedis.hget(`dl_org_${ref.orgName}`, '503_mode')));
    };
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 2 });
    const status = await waitForRunEnd(h);
    afterCopyRead.hook = undefined;
    await setDrainWait(0);
    // Each org was read once, never dark at the time.
    expect(darkAtCopy).toHaveLength(4);
    expect(darkAtCopy.filter((v) => v === 'true')).toEqual([]);
    for (const o of orgs) {
      const st = (await h.api('GET', `/orgs/${o.name}`)).body.states[T];
      expect(st.state, o.name).toBe('completed');
      // Dark from the 503 write to the switch: the drain wait, then one _changes read and the checkpoint.
      expect(st.dark_ms, o.name).toBeGreaterThanOrEqual(400);
      expect(st.dark_ms, o.name).toBeLessThan(400 + 1500);
      expect(await flags(o)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    }
    expect(status.dark).toMatchObject({ orgs: 4, saturated: false });
    expect(status.dark?.p50_ms).toBeGreaterThanOrEqual(400);
    expect(status.dark?.max_ms).toBe(
      Math.max(...(await Promise.all(orgs.map(async (o) => Number((await h.api('GET', `/orgs/${o.name}`)).body.states[T].dark_ms))))),
    );
    const metrics = (await h.api('GET', '/metrics')).text;
    expect(metrics).toContain('mover_org_dark_seconds_bucket');
  });

  // Writes go on for a while after 503 went up, as requests the Chef API
  // accepted just before it do, all within the drain wait (the window the
  // drain wait is for; writes that go on past it are the next test's). This
  // org holds 3,000 other documents, so its copy (made before it went dark)
  // is a read of some size. Whichever way it goes, nothing is lost.
  it('never completes an org without a container written after 503 went up', async () => {
    const [org] = await readyOrgs(1, 3000);
    await setDrainWait(1000);
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    const late = await lateWriter(org, (startedAt) => Date.now() - startedAt > 400);
    await waitForRunEnd(h);
    await setDrainWait(0);
    const state = (await h.api('GET', `/orgs/${org.name}`)).body.states[T].state;
    const rows = await sqlRows(h, org.guid);
    if (state === 'completed') {
      const row = rows.containers.find((r) => r.id === late.id);
      expect(row).toMatchObject({ authz_id: late.authzId, name: expect.stringMatching(/^late-\d+$/) });
    } else {
      expect(state).toBe('failed');
      expect(rows).toEqual({ containers: [], groups: [] });
      expect(await flags(org)).toMatchObject({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
    }
  });

  /** Lands a rename of one container in CouchDB right after a copy has read the org (the first `times` copies). */
  function renameAfterCopies(org: SeededOrg, times: number) {
    const orgDb = nano(h.couchdb.url).use<Record<string, unknown>>(`chef_${org.guid}`);
    const target = org.expected.find((e) => e.table === 'containers')!;
    const seen = { copies: 0, finalName: target.name };
    afterCopyRead.hook = async (ref) => {
      if (ref.orgName !== org.name || ++seen.copies > times) return;
      const doc = await orgDb.get(target.id);
      seen.finalName = `renamed-after-copy-${seen.copies}`;
      await orgDb.insert({ ...doc, containername: seen.finalName });
    };
    return { target, seen };
  }

  it('copies again when a container changes right after the copy read it, and completes with the change', async () => {
    const [org] = await readyOrgs(1);
    const { target, seen } = renameAfterCopies(org, 1);
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    await waitForRunEnd(h);
    afterCopyRead.hook = undefined;
    expect(seen.copies).toBe(2);
    expect((await h.api('GET', `/orgs/${org.name}`)).body.states[T].state).toBe('completed');
    expect((await sqlRows(h, org.guid)).containers).toContainEqual({ id: target.id, name: 'renamed-after-copy-1', authz_id: target.authzId });
    expect(await flags(org)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
  });

  it('fails the org safely (served from CouchDB, up, no rows) when a write lands after every copy', async () => {
    const [org] = await readyOrgs(1);
    const { seen } = renameAfterCopies(org, 99);
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    const status = await waitForRunEnd(h);
    afterCopyRead.hook = undefined;
    expect(seen.copies).toBe(3);
    expect(status).toMatchObject({ objects_failed: 1, fatal_stop: false });
    const s = (await h.api('GET', `/orgs/${org.name}`)).body.states[T];
    expect(s).toMatchObject({
      state: 'failed',
      fail_location: 'check_writes',
      fail_detail: expect.stringMatching(/still being written in CouchDB after 3 reads of the org/),
    });
    // Dark from the 503 write until the restore brought it up again.
    expect(s.dark_ms).toBeGreaterThan(0);
    expect(await sqlRows(h, org.guid)).toEqual({ containers: [], groups: [] });
    expect(await flags(org)).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
  });
});
