// The HTTP contract's general rules: token, 400 naming the field, 404 for unknown types/orgs, 409 for state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINDINGS } from '../src/migration/survey-findings.js';
import { createHarness, refreshAccount, waitFor, type Harness } from './support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('api');
  h.startWorkers();
});
afterAll(() => h?.close());

describe('token check', () => {
  it('rejects a missing or wrong token with 401 on every guarded route, Bull Board included', async () => {
    for (const url of ['/account', '/settings', '/migrations/phase_2_migration/status', '/admin/queues', '/metrics']) {
      expect((await h.app.inject({ method: 'GET', url })).statusCode).toBe(401);
      expect((await h.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
    }
  });

  it('leaves the health probes open and reports every dependency ready', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toEqual({ postgres: 'ok', queue_redis: 'ok', darklaunch_redis: 'ok', couchdb: 'ok' });
  });

  it('lets a browser into Bull Board with ?token= once: a cookie, and the token out of the address bar at once', async () => {
    const first = await h.app.inject({ method: 'GET', url: '/admin/queues?token=test-token-not-secret' });
    expect(first.statusCode).toBe(303);
    expect(first.headers.location).toBe('/admin/queues');
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(';')[0];
    const again = await h.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie } });
    expect(again.statusCode).toBe(200);
    expect(
      again
        .json()
        .queues.map((q: { name: string }) => q.name)
        .sort(),
    ).toEqual(['account_refresh', 'estate_survey', 'phase_2_migration', 'phase_2_migration_prep', 'phase_2_purge', 'phase_2_revert']);
  });

  it('signs a browser in with a form that posts the token (never in a URL), and refuses a wrong one', async () => {
    const page = await h.app.inject({ method: 'GET', url: '/admin/queues', headers: { accept: 'text/html' } });
    expect(page.statusCode).toBe(401);
    expect(page.body).toContain('<form method="post" action="/login">');
    const wrong = await h.app.inject({
      method: 'POST',
      url: '/login',
      payload: 'token=guess&next=%2Fadmin%2Fqueues',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const right = await h.app.inject({
      method: 'POST',
      url: '/login',
      payload: 'token=test-token-not-secret&next=%2Fadmin%2Fqueues',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(right.statusCode).toBe(303);
    expect(right.headers.location).toBe('/admin/queues');
    const cookie = String(right.headers['set-cookie']).split(';')[0];
    expect((await h.app.inject({ method: 'GET', url: '/settings', headers: { cookie } })).statusCode).toBe(200);
    // Never sent on to another site.
    const away = await h.app.inject({
      method: 'POST',
      url: '/login',
      payload: 'token=test-token-not-secret&next=https%3A%2F%2Fevil.example',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(away.headers.location).toBe('/runbook');
  });
});

describe('bad input', () => {
  it.each([
    ['POST', '/migrations/phase_2_migration/orgs', { orgs: 'acme' }, 'orgs'],
    ['POST', '/migrations/phase_2_migration/orgs', { orgs: [] }, 'orgs'],
    ['POST', '/migrations/phase_2_migration/orgs', { org: ['acme'] }, 'org'],
    ['POST', '/migrations/phase_2_migration/start', { count: 0 }, 'count'],
    ['POST', '/migrations/phase_2_migration/start', { count: 'all', concurrency: '8' }, 'concurrency'],
    ['PUT', '/migrations/phase_2_migration/concurrency', { concurrency: 0 }, 'concurrency'],
    ['PUT', '/settings/sleep-time', { ms: -1 }, 'ms'],
    ['PUT', '/settings/sleep-time', { ms: true }, 'ms'],
    ['PUT', '/darklaunch/default', { couchdb_containers: 'false', couchdb_groups: false }, 'couchdb_containers'],
    ['PUT', '/darklaunch/org-creation', {}, 'enabled'],
    ['GET', '/migrations/phase_2_migration/orgs?state=bogus', undefined, 'state'],
  ])('%s %s %j → 400 naming %s', async (method, url, body, field) => {
    const res = await h.api(method as 'GET', url, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('bad_request');
    expect(res.body.message).toContain(field);
  });

  it('names a field the schema does not know', async () => {
    const res = await h.api('PUT', '/settings/sleep-time', { ms: 10, msec: 10 });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('"msec"');
  });

  it('answers malformed JSON with 400, not 500', async () => {
    const res = await h.api('POST', '/migrations/phase_2_migration/orgs', '{"orgs": [', { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBeTruthy();
  });

  it('answers an unknown migration type or org with 404', async () => {
    expect((await h.api('POST', '/migrations/phase_9/ready', {})).status).toBe(404);
    expect((await h.api('GET', '/migrations/nope/status')).body.error).toBe('unknown_type');
    expect((await h.api('GET', '/orgs/no-such-org')).status).toBe(404);
    // A kind with no orgs of its own: nothing can be captured under its name into Chef's table.
    for (const type of ['phase_2_migration_prep', 'phase_2_revert', 'phase_2_purge', 'estate_survey']) {
      const res = await h.api('POST', `/migrations/${type}/orgs`, { orgs: ['x'] });
      expect(res.body, type).toMatchObject({ error: 'no_own_orgs' });
      expect(res.status).toBe(404);
    }
    expect((await h.ctx.db.query(`SELECT count(*)::int AS n FROM org_migration_state WHERE migration_type <> 'phase_2_migration'`)).rows[0].n).toBe(0);
  });

  it('answers halt with nothing running with 409', async () => {
    expect((await h.api('POST', '/migrations/phase_2_migration/halt')).status).toBe(409);
  });
});

describe('capture and settings', () => {
  it('captures known orgs, reports duplicates, and counts unknown and pre-created names as unknown', async () => {
    await h.seed([{ name: 'api-a' }, { name: 'api-b' }, { name: 'api-pre', precreated: true }]);
    const snap = await refreshAccount(h);
    expect(snap).toMatchObject({ orgs: 3, precreated: 1, authz_joins: 51, state: 'idle' });
    const res = await h.api('POST', '/migrations/phase_2_migration/orgs', { orgs: ['api-a', 'api-b', 'api-pre', 'ghost', 'api-a'] });
    expect(res.body).toEqual({ inserted: ['api-a', 'api-b'], duplicate: [], unknown: ['api-pre', 'ghost'], precreated: ['api-pre'] });
    expect((await h.api('POST', '/migrations/phase_2_migration/orgs', { orgs: ['api-a'] })).body.duplicate).toEqual(['api-a']);
    const list = await h.api('GET', '/migrations/phase_2_migration/orgs?state=holding&limit=10');
    expect(list.body.orgs.map((o: { org_name: string }) => o.org_name)).toEqual(['api-a', 'api-b']);
    expect((await h.api('POST', '/migrations/phase_2_migration/ready', {})).body).toEqual({ updated: 2 });
    expect((await h.api('POST', '/migrations/phase_2_migration/hold', { orgs: ['api-a', 'ghost'] })).body).toEqual({ updated: 1, skipped: ['ghost'] });
  });

  it('keeps sleep time and drain wait in Postgres and shows them with dry-run', async () => {
    expect((await h.api('PUT', '/settings/sleep-time', { ms: 250 })).status).toBe(200);
    const unsafe = await h.api('PUT', '/settings/drain-wait', { ms: 10 });
    expect(unsafe.status).toBe(400);
    expect(unsafe.body.message).toMatch(/^acknowledge_risk: .*5000 ms/);
    expect((await h.api('PUT', '/settings/drain-wait', { ms: 10, acknowledge_risk: true })).status).toBe(200);
    expect((await h.api('GET', '/settings')).body).toMatchObject({
      sleep_time_ms: 250,
      drain_wait_ms: 10,
      dry_run: false,
      failure_breaker: { share: 0.2, window: 50 },
      breaker: { cool_down_ms: expect.any(Number), stable_ms: expect.any(Number) },
    });
    expect((await h.api('PUT', '/settings/drain-wait', { ms: 5000 })).body.drain_wait_ms).toBe(5000);
    // The pacing lives in the queue's meta as BullMQ's global rate limit: `concurrency` (1 here)
    // starts per window of the sleep time or the drain wait, whichever is longer (src/queues.ts).
    const meta = `${h.config.queuePrefix}:phase_2_migration:meta`;
    expect(await h.ctx.queueRedis.hmget(meta, 'max', 'duration')).toEqual(['1', '5000']);
    await h.api('PUT', '/settings/drain-wait', { ms: 10, acknowledge_risk: true });
    expect(await h.ctx.queueRedis.hmget(meta, 'max', 'duration')).toEqual(['1', '250']);
    await h.api('PUT', '/settings/sleep-time', { ms: 0 });
    await h.api('PUT', '/settings/drain-wait', { ms: 0, acknowledge_risk: true });
    expect(await h.ctx.queueRedis.hmget(meta, 'max', 'duration')).toEqual([null, null]);
  });

  it('flips darklaunch org creation and the default routing', async () => {
    await h.api('PUT', '/darklaunch/org-creation', { enabled: false });
    expect(await h.ctx.darklaunchRedis.hget('dl_org__OC_INTERNAL_NO_ORG', 'disable_new_orgs')).toBe('true');
    await h.api('PUT', '/darklaunch/org-creation', { enabled: true });
    expect(await h.ctx.darklaunchRedis.hexists('dl_org__OC_INTERNAL_NO_ORG', 'disable_new_orgs')).toBe(0);
    await h.api('PUT', '/darklaunch/default', { couchdb_containers: false, couchdb_groups: false });
    expect(await h.ctx.darklaunchRedis.hgetall('dl_default')).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false' });
    expect((await h.api('GET', '/darklaunch/default')).body).toEqual({ couchdb_containers: false, couchdb_groups: false });
  });

  it('serves Prometheus metrics: process, fleet and per-org figures, labels escaped by prom-client', async () => {
    // The org counts come from a background count: a scrape waits for it only a moment, so a later one has it.
    const res = await waitFor(
      'org counts in /metrics',
      async () => {
        const r = await h.api('GET', '/metrics');
        return r.text.includes('mover_orgs{') ? r : null;
      },
      10_000,
    );
    expect(res.text).toContain('mover_orgs{migration_type="phase_2_migration",state="ready"} 1');
    expect(res.text).toContain('mover_queue_jobs{queue="phase_2_migration",state="waiting"}');
    expect(res.text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(res.text).toContain('# TYPE mover_step_duration_seconds histogram');
    expect(res.text).toMatch(/^mover_orgs_dark \d+$/m);
  });
});

describe('reset and dry run', () => {
  it('reset moves failed orgs to holding and removes their partial SQL rows', async () => {
    const [org] = await h.seed([{ name: 'api-reset' }]);
    await refreshAccount(h);
    await h.api('POST', '/migrations/phase_2_migration/orgs', { orgs: ['api-reset'] });
    await h.ctx.db.query(`UPDATE org_migration_state SET state = 'failed', fail_location = 'verify' WHERE org_name = 'api-reset'`);
    // Rows a failed delivery left behind (mover wrote them) ...
    const e = org.expected[0];
    await h.ctx.db.query(`INSERT INTO containers VALUES ($1, $2, $3, $4, $5, now(), now())`, [e.id, org.guid, e.authzId, e.name, '0'.repeat(32)]);
    await h.ctx.db.query(
      `INSERT INTO mover.org_progress (migration_type, org_id, org_name, rows_in_sql) VALUES ('phase_2_migration', $1, 'api-reset', true)
       ON CONFLICT (migration_type, org_id) DO UPDATE SET rows_in_sql = true`,
      [org.guid],
    );
    // ... and rows of another org that mover never wrote.
    const [other] = await h.seed([{ name: 'api-reset-sql-born' }]);
    await h.ctx.db.query(`INSERT INTO containers VALUES ($1, $2, $3, 'born-on-sql', $4, now(), now())`, [
      other.expected[0].id,
      other.guid,
      other.expected[0].authzId,
      '0'.repeat(32),
    ]);
    expect((await h.api('POST', '/migrations/phase_2_migration/reset', { orgs: ['api-reset', 'api-a'] })).body).toEqual({ updated: 1, skipped: ['api-a'] });
    const s = (await h.api('GET', '/orgs/api-reset')).body.states.phase_2_migration;
    expect(s).toMatchObject({ state: 'holding', fail_location: null });
    expect((await h.ctx.db.query('SELECT count(*)::int AS n FROM containers WHERE org_id = $1', [org.guid])).rows[0].n).toBe(0);
    expect((await h.ctx.db.query('SELECT name FROM containers WHERE org_id = $1', [other.guid])).rows).toEqual([{ name: 'born-on-sql' }]);
  });

  it('writes no darklaunch flag under DRY_RUN', async () => {
    const { Darklaunch } = await import('../src/darklaunch.js');
    const dl = new Darklaunch(h.ctx.darklaunchRedis, { graceMs: 0, log: h.ctx.log }, true);
    const flags = dl.fenced('dry-org', 1);
    await flags.setDown(true);
    await flags.routeToSqlAndUp();
    await flags.routeBackToCouch();
    expect(await dl.pinOrgsToCouch(['dry-org'])).toEqual([]);
    await dl.setDefault({ couchdb_containers: true, couchdb_groups: true });
    expect(await h.ctx.darklaunchRedis.exists('dl_org_dry-org')).toBe(0);
    expect(await h.ctx.darklaunchRedis.exists('mover_fence:{dl_org_dry-org}')).toBe(0);
    expect(await h.ctx.darklaunchRedis.hgetall('dl_default')).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false' });
  });
});

describe('org lists as files and the audit log', () => {
  it('accepts text/plain, one org a line, with per-line results and the line of each name that failed', async () => {
    await h.seed([{ name: 'file-a' }, { name: 'file-b' }]);
    await refreshAccount(h);
    const file = '# orgs for tonight\nfile-a\n\n  file-b  \nnobody\n';
    const res = await h.api('POST', '/migrations/phase_2_migration/orgs', file, { 'content-type': 'text/plain', 'x-mover-actor': 'bob' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ inserted: ['file-a', 'file-b'], unknown: ['nobody'] });
    expect(res.body.lines).toEqual([
      { line: 1, org: '# orgs for tonight', result: 'skipped: a comment' },
      { line: 2, org: 'file-a', result: 'inserted' },
      { line: 4, org: 'file-b', result: 'inserted' },
      { line: 5, org: 'nobody', result: 'unknown' },
    ]);
    expect(res.body.failed_lines).toEqual([{ line: 5, org: 'nobody', result: 'unknown' }]);
    const ready = await h.api('POST', '/migrations/phase_2_migration/ready', 'file-a\nnobody\n', { 'content-type': 'text/plain' });
    expect(ready.body).toMatchObject({
      updated: 1,
      skipped: ['nobody'],
      failed_lines: [{ line: 2, org: 'nobody', result: 'skipped: not captured for phase_2_migration' }],
    });
    // Each line skipped says why: a name in another state than the move takes.
    const again = await h.api('POST', '/migrations/phase_2_migration/ready', 'file-a\n', { 'content-type': 'text/plain' });
    expect(again.body.failed_lines).toEqual([{ line: 1, org: 'file-a', result: 'skipped: it is ready, not holding' }]);
    expect((await h.api('POST', '/migrations/phase_2_migration/hold', '\n# nothing\n', { 'content-type': 'text/plain' })).status).toBe(400);
    const entries = (await h.api('GET', '/audit?limit=5')).body.entries;
    expect(entries[0]).toMatchObject({ actor: 'operator', action: 'orgs.ready', detail: { orgs: ['file-a'], updated: 0 } });
    expect(entries[1]).toMatchObject({ actor: 'operator', action: 'orgs.ready', detail: { orgs: ['file-a', 'nobody'], updated: 1 } });
    expect(entries[2]).toMatchObject({ actor: 'bob', action: 'orgs.capture', detail: { inserted: 2, unknown: ['nobody'] } });
  });
});

describe('phase routes and bad input', () => {
  it('lists four phases and answers bad phase input with 400/404/409', async () => {
    const list = (await h.api('GET', '/phases')).body.phases;
    expect(list.map((p) => [p.phase, p.state])).toEqual([
      [1, 'not_started'],
      [2, 'not_started'],
      [3, 'not_started'],
      [4, 'not_started'],
    ]);
    expect(list[1].steps.find((s) => s.id === '2.1')).toMatchObject({
      kind: 'manual',
      state: 'pending',
      detail: { command: expect.stringContaining('org-creator stop') },
    });
    expect((await h.api('GET', '/phases/9')).status).toBe(404);
    expect((await h.api('POST', '/phases/9/start', {})).status).toBe(404);
    const empty = await h.api('POST', '/phases/1/start', { orgs: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.message).toContain('orgs');
    expect((await h.api('POST', '/phases/2/start', { extra: 1 })).status).toBe(400);
    expect((await h.api('POST', '/phases/3/start', {})).body).toMatchObject({ error: 'phase_not_ready' });
    expect((await h.api('POST', '/phases/1/steps/1.1/confirm', { by: 'x' })).status).toBe(409);
    expect((await h.api('POST', '/phases/1/steps/1.1/confirm', {})).body.message).toContain('by');
    expect((await h.api('POST', '/phases/1/steps/9.9/confirm', { by: 'x' })).status).toBe(404);
  });
});

describe('a 400 that teaches', () => {
  it('names the values an enum or a constant allows, once, and a property that is not allowed', async () => {
    const finding = await h.api('GET', '/survey/orgs?finding=bogus');
    expect(finding.status).toBe(400);
    expect(finding.body.message).toBe(`querystring/finding must be one of: ${FINDINGS.map((f) => `"${f}"`).join(', ')}`);
    const word = await h.api('POST', '/phases/4/start', { confirm: 'yes' });
    expect(word.status).toBe(400);
    expect(word.body.message).toBe('body/confirm must be "purge-couchdb-data"');
    expect((await h.api('POST', '/phases/2/start', { extra: 1 })).body.message).toBe('body must NOT have additional properties ("extra")');
    expect((await h.api('PUT', '/settings/sleep-time', {})).body.message).toBe("body must have required property 'ms'");
  });
});
