// The runbook end to end: four phases through the API, manual steps confirmed,
// end state of CouchDB, Postgres and the darklaunch Redis asserted; on each
// kind of CouchDB (the account refreshes, the prep pass and the purge read
// and write it).
import nano from 'nano';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SeededOrg } from '../dev/estate.js';
import { createHarness, describeEachCouch, expectedRows, sqlRows, type Harness } from './support/harness.js';
import { confirmWhenWaiting as confirmStep, deletePrecreatedFromCouch, stepOf, waitPhase as waitPhaseOf, waitStep } from './support/phases.js';

const T = 'phase_2_migration';
describeEachCouch('the runbook', (couch) => {
  let h: Harness;
  let estate: SeededOrg[];
  const precreated = ['pre-0', 'pre-1'];
  // A few hundred orgs: ORGS plain ones, two pre-created, two broken.
  const ORGS = 240;
  const phase1Orgs = ['org-000', 'org-001', 'org-002', 'org-003', 'org-004'];

  beforeAll(async () => {
    h = await createHarness(`phases-${couch}`, {}, { couch });
    h.startWorkers({ phaseTickMs: 100 });
    estate = await h.seed([
      ...Array.from({ length: ORGS }, (_, i) => ({ name: `org-${String(i).padStart(3, '0')}`, otherDocs: 2 })),
      ...precreated.map((name) => ({ name, precreated: true })),
      { name: 'broken-no-db', noDatabase: true },
      { name: 'broken-authz', missingAuthz: 4 },
    ]);
  });
  afterAll(() => h?.close());

  const waitPhase = (n: number, states: string[]) => waitPhaseOf(h, n, states);
  const confirmWhenWaiting = (n: number, id: string) => confirmStep(h, n, id);

  describe('the four phases', () => {
    it('phase 1 migrates the listed orgs and reports unknown and pre-created names', async () => {
      expect((await h.api('POST', '/phases/2/start', {})).status).toBe(409); // needs phase 1
      const res = await h.api('POST', '/phases/1/start', { orgs: [...phase1Orgs, 'ghost', 'pre-0'], concurrency: 4 });
      expect(res.status).toBe(202);
      const p = await waitPhase(1, ['completed', 'failed', 'halted']);
      expect(p.state).toBe('completed');
      // The refresh ran as an account_refresh job (never inside the driver's tick), and its snapshot is the current one.
      const refreshed = stepOf(p, '1.1').detail;
      expect(refreshed).toMatchObject({ job_id: expect.any(String), orgs: expect.any(Number), snapshot_id: expect.any(String) });
      expect(await (await h.ctx.queues.account_refresh.getJob(refreshed.job_id as string))?.getState()).toBe('completed');
      expect((await h.api('GET', '/account')).body).toMatchObject({ orgs: refreshed.orgs, state: 'idle' });
      expect(stepOf(p, '1.2').detail).toMatchObject({ inserted: 5, unknown: ['ghost'], precreated: ['pre-0'] });
      expect(stepOf(p, '1.4').detail).toMatchObject({ orgs_completed: 5, orgs_failed: 0 });
      for (const name of phase1Orgs) expect((await h.api('GET', `/orgs/${name}`)).body.states[T].state).toBe('completed');
    });

    it('phase 2 pins every other org to CouchDB, flips dl_default and re-enables org creation after confirmations', async () => {
      expect((await h.api('PUT', '/settings/sleep-time', { ms: 1234 })).status).toBe(200);
      expect((await h.api('POST', '/phases/2/start', {})).status).toBe(202);
      await confirmWhenWaiting(2, '2.1');
      await confirmWhenWaiting(2, '2.3');
      expect(await h.ctx.darklaunchRedis.hget('dl_org__OC_INTERNAL_NO_ORG', 'disable_new_orgs')).toBe('true');
      await deletePrecreatedFromCouch(h);
      // The refresh (2.4), the prep pass over ~240 orgs (2.5) and the flip (2.6): 2 s alone, far more on a machine the
      // whole suite shares, and a prep batch that met a store fault waits out its breaker's cool-down (10 s) and stable time (5 s).
      const p27 = await waitStep(h, 2, '2.7', 'waiting_confirmation', 90_000);
      expect(stepOf(p27, '2.7').detail.command).toContain('opscode-org-creator start');
      expect(stepOf(p27, '2.5').detail).toMatchObject({
        previous_sleep_time_ms: 1234,
        sleep_time_restored_ms: 1234,
        orgs_in_run: ORGS + 2 - phase1Orgs.length,
      });
      expect((await h.api('GET', '/settings')).body.sleep_time_ms).toBe(1234);
      // An org created on the new component between phases: in the account data, never captured.
      await h.seed([{ name: 'new-after-flip' }]);
      await confirmWhenWaiting(2, '2.7');
      expect(await h.ctx.darklaunchRedis.hget('dl_org__OC_INTERNAL_NO_ORG', 'disable_new_orgs')).toBe('true');
      await confirmWhenWaiting(2, '2.8');
      const p = await waitPhase(2, ['completed', 'failed']);
      expect(p.state).toBe('completed');
      expect(stepOf(p, '2.8')).toMatchObject({ state: 'done', confirmed_by: 'alice' });
      expect(await h.ctx.darklaunchRedis.hexists('dl_org__OC_INTERNAL_NO_ORG', 'disable_new_orgs')).toBe(0);
      expect(await h.ctx.darklaunchRedis.hgetall('dl_default')).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false' });
      // Every uncaptured, non-pre-created org is holding and pinned; phase-1 orgs keep their SQL routing.
      for (const org of estate.filter((o) => !o.precreated && !phase1Orgs.includes(o.name))) {
        expect((await h.api('GET', `/orgs/${org.name}`)).body.states[T].state, org.name).toBe('holding');
        expect(await h.ctx.darklaunchRedis.hgetall(`dl_org_${org.name}`)).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true' });
      }
      for (const name of phase1Orgs) expect((await h.ctx.darklaunchRedis.hgetall(`dl_org_${name}`)).couchdb_containers).toBe('false');
      expect(await h.ctx.darklaunchRedis.exists('dl_org_pre-1')).toBe(0);
    });

    it('phase 3 migrates the rest; a second start while it runs is 409', async () => {
      expect((await h.api('POST', '/phases/3/start', { concurrency: 4, sleep_time_ms: 0 })).status).toBe(202);
      expect((await h.api('POST', '/phases/3/start', {})).status).toBe(409);
      const p = await waitPhase(3, ['completed', 'failed', 'halted']);
      expect(p.state).toBe('completed');
      await assertMigratedEstate();
    });

    it('phase 4 needs the confirmation, reports in dry run, then purges only completed and verified orgs', async () => {
      expect((await h.api('POST', '/phases/4/start', {})).status).toBe(400);
      expect((await h.api('POST', '/phases/4/start', { confirm: 'yes' })).body.message).toContain('confirm');
      expect((await h.api('POST', '/phases/4/start', { confirm: 'purge-couchdb-data', dry_run: true })).status).toBe(202);
      const dry = await waitPhase(4, ['completed', 'failed']);
      expect(dry.state, JSON.stringify(stepOf(dry, '4.1'))).toBe('completed');
      expect(stepOf(dry, '4.1').detail, JSON.stringify(stepOf(dry, '4.1').detail)).toMatchObject({
        dry_run: true,
        purged: 0,
        would_purge: ORGS + 1,
        would_remove_docs: (ORGS + 1) * 17 - 4,
      });
      await assertMigratedEstate();
      // Make one completed org fail verification: its CouchDB copy changed after migration.
      const tampered = estate.find((o) => o.name === 'org-010')!;
      const tdb = nano(h.couchdb.url).use<Record<string, unknown>>(`chef_${tampered.guid}`);
      const doc = await tdb.get(tampered.expected[0].id);
      await tdb.insert({ ...doc, [tampered.expected[0].table === 'containers' ? 'containername' : 'groupname']: 'renamed-later' });

      expect((await h.api('POST', '/phases/4/start', { confirm: 'purge-couchdb-data' })).status).toBe(202);
      const p = await waitPhase(4, ['completed', 'failed']);
      expect(p.state).toBe('completed');
      expect(stepOf(p, '4.1').detail).toMatchObject({ purged: ORGS, unverified: [{ org: 'org-010' }] });
      for (const org of estate.filter((o) => !o.precreated)) {
        const state = (await h.api('GET', `/orgs/${org.name}`)).body.states[T].state;
        const db = nano(h.couchdb.url).use(`chef_${org.guid}`);
        if (org.name === 'broken-no-db') {
          expect(state).toBe('failed');
          continue;
        }
        const remaining = (await db.list()).rows.map((r) => r.id);
        if (org.name === 'org-010') {
          expect(state).toBe('completed');
          for (const e of org.expected) expect(remaining).toContain(e.id);
        } else {
          expect(state, org.name).toBe('purge_successful');
          for (const e of org.expected) expect(remaining).not.toContain(e.id);
          // Other documents (nodes) and skipped objects stay.
          expect(remaining.length).toBe((org.name === 'broken-authz' ? 0 : 2) + org.skippedIds.length);
        }
      }
      const auditLog = (await h.api('GET', '/audit?limit=1000')).body.entries.map((e) => `${e.action}:${e.actor}`);
      expect(auditLog).toEqual(
        expect.arrayContaining(['phase.start:operator', 'phase.confirm:alice', 'settings.sleep_time:operator', 'phase.step_done:phase 2']),
      );
    });

    it('runs a completed phase again only when asked in so many words, and changes no setting it was not given', async () => {
      const runsBefore = (await h.api('GET', `/migrations/${T}/runs`)).body.runs;
      const sleepBefore = (await h.api('GET', '/settings')).body.sleep_time_ms;
      const refused = await h.api('POST', '/phases/3/start', {});
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ error: 'phase_completed' });
      expect(refused.body.message).toMatch(/start a migration run over the ready orgs.*"again": true/);
      expect((await h.api('GET', '/phases/3')).body.state).toBe('completed');
      const res = await h.api('POST', '/phases/3/start', { again: true });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ phase: 3, again: true, resumed: false });
      expect(res.body.settings).toEqual({});
      const p = await waitPhase(3, ['completed', 'failed', 'halted']);
      expect(p.state).toBe('completed');
      expect(stepOf(p, '3.1').detail).toMatchObject({ sleep_time_ms: sleepBefore, changed: false });
      // Nothing was ready: the step is done with no run, and the latest run is still phase 3's real one.
      expect(stepOf(p, '3.3').detail).toMatchObject({ orgs_in_run: 0, note: expect.stringMatching(/no org is waiting/) });
      expect((await h.api('GET', `/migrations/${T}/runs`)).body.runs).toEqual(runsBefore);
      expect((await h.api('GET', '/settings')).body.sleep_time_ms).toBe(sleepBefore);
      const audit = (await h.api('GET', '/audit?limit=20')).body.entries.find((e) => e.action === 'phase.again');
      expect(audit).toMatchObject({ detail: { phase: 3, params: {}, settings: {} } });
      // Phase 4 purged for real (not a dry run): again only with the word too.
      expect((await h.api('POST', '/phases/4/start', { confirm: 'purge-couchdb-data' })).body).toMatchObject({ error: 'phase_completed' });
    });
  });

  async function assertMigratedEstate() {
    for (const org of estate) {
      const s = (await h.api('GET', `/orgs/${org.name}`)).body;
      if (org.precreated) {
        expect(s.states?.[T], org.name).toBeUndefined();
        continue;
      }
      const flags = await h.ctx.darklaunchRedis.hgetall(`dl_org_${org.name}`);
      expect(flags['503_mode'] ?? 'false').toBe('false');
      if (org.name === 'broken-no-db') {
        expect(s.states[T]).toMatchObject({ state: 'failed', fail_location: 'migrate' });
        expect(flags).toMatchObject({ couchdb_containers: 'true', couchdb_groups: 'true' });
        expect(await sqlRows(h, org.guid)).toEqual({ containers: [], groups: [] });
      } else {
        expect(s.states[T].state, org.name).toBe('completed');
        expect(flags).toMatchObject({ couchdb_containers: 'false', couchdb_groups: 'false' });
        expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
      }
    }
    // Created after the prep pass: never captured, served from SQL by dl_default.
    const { rows } = await h.ctx.db.query(`SELECT count(*)::int AS n FROM org_migration_state WHERE org_name = 'new-after-flip'`);
    expect(rows[0].n).toBe(0);
    expect(await h.ctx.darklaunchRedis.exists('dl_org_new-after-flip')).toBe(0);
  }
});
