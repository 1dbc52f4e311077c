// mover on a host whose clock says UTC+05:30 (TZ=Asia/Kolkata; this whole
// file runs so): what it writes to Chef's tables is UTC, as Chef writes and
// reads them, so erchef's own statement for a container (oc_chef_authz_db's
// find_container_by_orgid_name, run verbatim and read as erchef reads a
// timestamp: the wall clock, taken for UTC) gives the moment of the copy; and
// every time mover reads back or reports (an org's migration times, the run,
// its minutes, the audit log, the survey) is that same moment, not 5 h 30 min
// off.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, refreshAccount, waitFor, waitForRunEnd, type Harness } from './support/harness.js';
import type { SeededOrg } from '../dev/estate.js';

const T = 'phase_2_migration';
/** How far a time may be from the moment it stands for: the run itself, and the machine's own delays. */
const CLOSE_MS = 60_000;

let h: Harness;
let org: SeededOrg;
let window: { from: number; to: number };

beforeAll(async () => {
  // Node takes a new TZ at once (every Date after this is local to it).
  process.env.TZ = 'Asia/Kolkata';
  h = await createHarness('tz');
  [org] = await h.seed([{ name: 'tz-org' }]);
  h.startWorkers();
  await refreshAccount(h);
  await h.api('POST', `/migrations/${T}/orgs`, { orgs: [org.name] });
  await h.api('POST', `/migrations/${T}/ready`, {});
  const from = Date.now();
  expect((await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 })).status).toBe(202);
  expect(await waitForRunEnd(h)).toMatchObject({ orgs_completed: 1, objects_failed: 0 });
  window = { from, to: Date.now() };
});
afterAll(() => h?.close());

const near = (at: number | string | null | undefined, what: string) => {
  const ms = typeof at === 'number' ? at : Date.parse(String(at));
  expect(ms, `${what}: ${at}`).toBeGreaterThanOrEqual(window.from - CLOSE_MS);
  expect(ms, `${what}: ${at}`).toBeLessThanOrEqual(window.to + CLOSE_MS);
};

describe('on a host at UTC+05:30', () => {
  it('runs at UTC+05:30 (the check of this file holds)', () => {
    expect(new Date(0).getTimezoneOffset()).toBe(-330);
  });

  it("writes Chef's created_at and updated_at as UTC: erchef's own statements read the moment of the copy", async () => {
    // As erchef's driver hands a timestamp to Chef: its wall clock, which Chef takes for UTC.
    const erchef = new pg.Client({
      connectionString: h.config.databaseUrl,
      types: { getTypeParser: (oid: number, format?: string) => (oid === 1114 ? (v: string) => v : pg.types.getTypeParser(oid, format as 'text')) },
    });
    await erchef.connect();
    try {
      for (const [table, statement, name] of [
        ['containers', 'find_container_by_orgid_name', 'clients'],
        ['groups', 'find_group_by_orgid_name', 'admins'],
      ]) {
        const { rows } = await erchef.query(
          `SELECT id, authz_id, org_id, name, last_updated_by, created_at, updated_at FROM ${table} WHERE (org_id = $1 AND name = $2) LIMIT 1`,
          [org.guid, name],
        );
        expect(rows, statement).toHaveLength(1);
        for (const column of ['created_at', 'updated_at']) near(Date.parse(`${rows[0][column].replace(' ', 'T')}Z`), `${statement} ${column}`);
      }
    } finally {
      await erchef.end();
    }
  });

  it("reads Chef's times and reports its own as UTC: the org's migration times, the run, its minutes, the audit log and the survey", async () => {
    const states = (await h.api('GET', `/orgs/${org.name}`)).body.states[T];
    near(states.migration_start, 'migration_start');
    near(states.migration_end, 'migration_end');
    const status = (await h.api('GET', `/migrations/${T}/status`)).body;
    near(status.started_at, 'run started_at');
    near(status.finished_at, 'run finished_at');
    const series = await waitFor('a run sample', async () => {
      const s = (await h.api('GET', `/migrations/${T}/series`)).body;
      return s.points?.length ? s : null;
    });
    for (const p of series.points) near(p.at, 'run series point');
    const audit = (await h.api('GET', '/audit?limit=5')).body.entries;
    expect(audit.length).toBeGreaterThan(0);
    for (const e of audit) near(e.at, `audit ${e.action}`);
    const account = (await h.api('GET', '/account')).body;
    near(account.refreshed_at, 'account refreshed_at');
    expect((await h.api('POST', '/survey/start', {})).status).toBe(202);
    const survey = await waitFor('the survey', async () => {
      const s = (await h.api('GET', '/survey')).body;
      return s.state === 'completed' || s.finished_at ? s : null;
    });
    window.to = Date.now();
    near(survey.started_at, 'survey started_at');
  });
});
