// The estate survey as an operator drives it (docs/api.md, "Survey"): bad
// input refused naming the field, one survey at a time, a halt, keyset pages
// filtered by finding, the CSV, the CLI; and that it resumes: a batch
// delivered twice counts once, and a worker killed mid-survey leaves nothing
// for the next one to count twice.
import { spawn } from 'node:child_process';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processEnv } from '../dev/processes.js';
import { JOB_KINDS } from '../src/jobs/index.js';
import { surveyBatching } from '../src/jobs/estate_survey.js';
import type { SurveyOrgsPage } from '../src/cli/replies.js';
import { createHarness, refreshAccount, TOKEN, waitFor, type Harness } from './support/harness.js';
import { runCli } from './support/cli.js';
import { surveyEnd } from './support/survey.js';

const N = 20;
/** Other documents an org: enough that a batch takes a while to read, so a kill lands in one. */
const OTHER = 300;
const MESSY = ['sa-03', 'sa-07', 'sa-11', 'sa-15'];
let h: Harness;
const survey = async (query: '' | `?${string}` = '') => (await h.api('GET', `/survey${query}`)).body;
const batchSize = surveyBatching.orgs;

beforeAll(async () => {
  surveyBatching.orgs = 3;
  h = await createHarness('survey-api');
  const names = Array.from({ length: N }, (_, i) => `sa-${String(i).padStart(2, '0')}`);
  await h.seed(names.map((name) => ({ name, containers: 3, groups: 2, otherDocs: OTHER, missingAuthz: MESSY.includes(name) ? 1 : 0 })));
  // Its refusal holds quotes, for the CSV.
  await h.ctx.darklaunchRedis.hset('dl_org_sa-19', { couchdb_containers: 'false', couchdb_groups: 'false' });
}, 60_000);
afterAll(async () => {
  surveyBatching.orgs = batchSize;
  await h?.close();
});

describe('the estate survey through the API', () => {
  it('answers before any survey: not started, nothing found, an empty page and a CSV of its header; and will not start without a snapshot', async () => {
    const s = await survey();
    expect(s).toMatchObject({ state: 'not_started', started_at: null, finished_at: null, orgs_surveyed: 0, orgs_total: 0, largest: [] });
    expect(Object.values(s.totals).every((n) => n === 0)).toBe(true);
    expect((await h.api('GET', '/survey/orgs')).body).toEqual({ orgs: [], next_cursor: null });
    const csv = await h.app.inject({ method: 'GET', url: '/survey/orgs.csv', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(csv.body.trim().split('\r\n')).toHaveLength(1);
    expect((await h.api('POST', '/survey/start', {})).body).toMatchObject({ error: 'no_snapshot' });
  });

  it('refuses bad input with a 400 naming the field: an unknown finding, a NUL, a number out of range, a field it does not know', async () => {
    const cases: [string, string, unknown, string][] = [
      ['GET', '/survey/orgs?finding=nope', undefined, 'finding'],
      ['GET', '/survey/orgs?finding=a%00b', undefined, 'finding'],
      ['GET', '/survey/orgs?cursor=a%00b', undefined, 'cursor'],
      ['GET', '/survey/orgs?limit=0', undefined, 'limit'],
      ['GET', '/survey?concurrency=0', undefined, 'concurrency'],
      ['GET', '/survey?drain_wait_ms=-5', undefined, 'drain_wait_ms'],
      ['GET', '/survey?sleep_time_ms=1e3', undefined, 'sleep_time_ms'],
      ['POST', '/survey/start', { concurrency: 0 }, 'concurrency'],
      ['POST', '/survey/start', { count: 5 }, 'body'],
    ];
    for (const [method, url, body, field] of cases) {
      const res = await h.api(method as 'GET' | 'POST', url, body);
      expect(res.status, `${method} ${url}`).toBe(400);
      expect(res.body.message, `${method} ${url}`).toContain(field);
    }
  });

  it('runs one survey at a time (409), and a batch delivered twice counts its orgs once', async () => {
    // The account refresh needs a worker; then none, so the survey waits. (Its stall check, like every
    // worker's, holds off the others' for its own lock's length: short, for the kill below.)
    const fleet = h.startWorkers({ lockDurationMs: 1000 });
    await refreshAccount(h);
    await fleet.close(5000);
    const start = await h.api('POST', '/survey/start', { concurrency: 1 });
    expect(start.status).toBe(202);
    expect(start.body.orgs).toBe(N);
    const again = await h.api('POST', '/survey/start');
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('run_active');
    expect(await survey()).toMatchObject({ state: 'running', orgs_surveyed: 0, orgs_total: N, concurrency: 1 });

    // Batch 1 (sa-03, sa-04, sa-05) delivered twice: once by hand, once more the same way.
    const job = (await h.ctx.queues.estate_survey.getJob(`r${start.body.run_id}.b1`)) as Job;
    for (let i = 0; i < 2; i++) await JOB_KINDS.estate_survey.process(h.ctx, job, undefined);
    const s = await survey();
    expect(s).toMatchObject({ orgs_surveyed: 3, totals: { missing_authz: 1 }, skipped_documents: { missing_authz: 1 } });
    expect((await h.api('GET', '/survey/orgs')).body.orgs.map((o) => o.org_name)).toEqual(['sa-03', 'sa-04', 'sa-05']);
  });

  it('resumes after a worker process is killed mid-batch: every org surveyed, none counted twice', async () => {
    // A worker process as the Procfile starts it, its job lock short, SIGKILLed while it reads a batch.
    const env = processEnv(h.config, { JOB_LOCK_MS: '5000', LOG_LEVEL: 'error' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/workers/worker.ts'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    await waitFor('some batches surveyed', async () => (await survey()).orgs_surveyed >= 9, 30_000, 10);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Its batch is left active, its lock to lapse; the survey is still running.
    expect(await h.ctx.queues.estate_survey.getActiveCount()).toBe(1);
    expect((await survey()).state).toBe('running');
    h.startWorkers({ lockDurationMs: 1000 });
    const s = await surveyEnd(h, 60_000);
    expect(s).toMatchObject({ state: 'completed', orgs_surveyed: N, orgs_total: N });
    expect(s.totals).toMatchObject({ missing_authz: MESSY.length, on_sql_unmigrated: 1, preflight_refused: 1 });
    expect(s.skipped_documents.missing_authz).toBe(MESSY.length);
    expect(s.sizes).toMatchObject({ containers: 3 * N, groups: 2 * N, documents: (5 + OTHER) * N });
    const { rows } = await h.ctx.db.query(
      `SELECT (SELECT count(*) FROM mover.survey_orgs)::int AS orgs, (SELECT sum(orgs) FROM mover.survey_batches)::int AS batched`,
    );
    expect(rows[0]).toEqual({ orgs: N, batched: N });
  });

  it('pages the orgs by name, all of them or those with one finding', async () => {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page: SurveyOrgsPage = (await h.api('GET', `/survey/orgs?limit=6${cursor ? `&cursor=${cursor}` : ''}`)).body;
      expect(page.orgs.length).toBeLessThanOrEqual(6);
      all.push(...page.orgs.map((o) => o.org_name));
      cursor = page.next_cursor;
    } while (cursor);
    expect(all).toEqual(Array.from({ length: N }, (_, i) => `sa-${String(i).padStart(2, '0')}`));
    const first = (await h.api('GET', '/survey/orgs?finding=missing_authz&limit=3')).body;
    expect(first.orgs.map((o) => o.org_name)).toEqual(MESSY.slice(0, 3));
    expect(first.orgs[0]).toMatchObject({ findings: ['missing_authz'], detail: { skipped_by_rule: { missing_authz: 1 } } });
    const rest = (await h.api('GET', `/survey/orgs?finding=missing_authz&limit=3&cursor=${first.next_cursor}`)).body;
    expect(rest).toEqual({ orgs: [expect.objectContaining({ org_name: 'sa-15' })], next_cursor: null });
    expect((await h.api('GET', '/survey/orgs?finding=missing_database')).body).toEqual({ orgs: [], next_cursor: null });
  });

  it('gives every org as one CSV row, fields quoted where they must be', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/survey/orgs.csv', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    const lines = res.body.split('\r\n').filter(Boolean);
    expect(lines).toHaveLength(N + 1);
    const header = lines[0].split(',');
    expect(header.slice(0, 4)).toEqual(['org_name', 'org_id', 'migration_state', 'served_from']);
    const messy = Object.fromEntries(header.map((c, i) => [c, lines[4].split(',')[i]]));
    expect(messy).toMatchObject({
      org_name: 'sa-03',
      containers: '3',
      groups: '2',
      documents: String(5 + OTHER),
      findings: 'missing_authz',
      skipped_missing_authz: '1',
    });
    expect(lines[20]).toMatch(
      /^sa-19,[0-9a-f]{32},,sql,.*,on_sql_unmigrated preflight_refused,.*"Chef serves it from SQL: couchdb_containers = ""false"" \(dl_org_sa-19\)/,
    );
  });

  it('halts: no more batches, the survey says halted, and another can start', async () => {
    const start = await h.api('POST', '/survey/start', { concurrency: 1 });
    expect(start.status).toBe(202);
    expect((await h.api('POST', '/survey/halt')).status).toBe(200);
    const s = await surveyEnd(h);
    expect(s.state).toBe('halted');
    expect(s.orgs_surveyed).toBeLessThan(N);
    expect(s.stop_reason).toMatch(/halted by/);
    expect((await h.api('POST', '/survey/halt')).status).toBe(409);
    const audit = (await h.api('GET', '/audit?limit=5')).body.entries.map((e) => e.action);
    expect(audit).toEqual(expect.arrayContaining(['survey.start', 'survey.halt']));
  });

  it('is driven from the CLI: mover survey start --watch, mover survey, mover survey orgs --finding', async () => {
    const url = await h.app.listen({ host: '127.0.0.1', port: 0 });
    // From the sources: bin/mover.js runs a build where there is one, which may predate them.
    const mover = (args: string[]) => runCli(url, args, { fromSource: true });
    const watched = await mover(['survey', 'start', '--watch', '--concurrency', '2']);
    expect(watched.err).toBe('');
    expect(watched.code).toBe(0);
    expect(watched.out).toMatch(/surveyed 20\/20 orgs — completed/);
    expect(watched.out).toMatch(/missing_authz +4 orgs/);
    const shown = await mover(['survey', '--concurrency', '150', '--drain-wait', '5000']);
    expect(shown.out).toMatch(/completed, 20\/20 orgs/);
    expect(shown.out).toMatch(/estimate: 19 orgs to migrate at concurrency 150, drain wait 5000 ms/);
    const listed = await mover(['survey', 'orgs', '--finding', 'preflight_refused']);
    expect(listed.out).toMatch(/^sa-19 +on_sql_unmigrated preflight_refused\n {4}preflight: Chef serves it from SQL/);
    // Paged: a page says there is more and how to get it; --all takes every page.
    const page = await mover(['survey', 'orgs', '--limit', '7']);
    expect(
      page.out
        .trim()
        .split('\n')
        .filter((l) => /^sa-/.test(l)),
    ).toHaveLength(7);
    expect(page.out).toContain('more: mover survey orgs --cursor sa-06 (or --all)');
    const next = await mover(['survey', 'orgs', '--limit', '7', '--cursor', 'sa-06']);
    expect(next.out).toMatch(/^sa-07 /);
    const all = JSON.parse((await mover(['--json', 'survey', 'orgs', '--all', '--limit', '7'])).out);
    expect(all.orgs).toHaveLength(N);
    expect(all.next_cursor).toBeNull();
    const json = JSON.parse((await mover(['--json', 'survey'])).out);
    expect(json).toMatchObject({ state: 'completed', orgs_surveyed: N });
  }, 60_000);
});
