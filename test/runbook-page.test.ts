// The runbook page in a real browser (Debian's chromium through
// playwright-core): signed in through the form, it shows a phase progress
// while a run goes, its link opens Bull Board, and both answer 401 to a
// browser without the cookie; its script is served compiled, to operators
// only. A screenshot of it during the run is left in .test-results/runbook.png.
import { mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, TOKEN, type Harness } from './support/harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let h: Harness;
let url: string;
let browser: Browser;

beforeAll(async () => {
  h = await createHarness('runbook-page');
  await h.seed(Array.from({ length: 8 }, (_, i) => ({ name: `page-org-${i}` })));
  await h.api('PUT', '/settings/drain-wait', { ms: 500, acknowledge_risk: true });
  h.startWorkers({ phaseTickMs: 200 });
  url = await h.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

describe('the runbook page', () => {
  it('signs in by the form, shows phase 1 progressing to completed, and links to Bull Board; 401 for a browser without the cookie', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    const first = await page.goto(`${url}/runbook`);
    expect(first?.status()).toBe(401);
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(`${url}/runbook`), page.click('button[type=submit]')]);
    await page.waitForSelector('text=Phase 1: Migrate selected orgs');

    const start = await h.api('POST', '/phases/1/start', { orgs: Array.from({ length: 8 }, (_, i) => `page-org-${i}`), concurrency: 1 });
    expect(start.status).toBe(202);
    // Mid-run: the bar and the step's count move.
    await page.waitForFunction(() => /[1-7]\/8 orgs/.test(document.body.innerText), undefined, { timeout: 30_000 });
    mkdirSync('.test-results', { recursive: true });
    await page.screenshot({ path: '.test-results/runbook.png', fullPage: true });
    await page.waitForFunction(() => /Phase 1: Migrate selected orgs\s+completed/.test(document.body.innerText), undefined, { timeout: 60_000 });
    expect(await page.textContent('#runline')).toMatch(/^8 of 8 orgs finished/);

    await Promise.all([page.waitForURL(`${url}/admin/queues`), page.click('#bull')]);
    await page.waitForSelector('text=phase_2_migration', { timeout: 15_000 });

    const stranger = await browser.newContext();
    for (const path of ['/runbook', '/admin/queues', '/docs']) expect((await stranger.request.get(`${url}${path}`)).status(), path).toBe(401);
    await stranger.close();
    await context.close();
  }, 120_000);

  it('serves its script (src/api/page/browser/) compiled, each module it imports too, revalidated on every load, and only to an operator', async () => {
    const get = (path: string, token: string | null = TOKEN) =>
      h.app.inject({ method: 'GET', url: path, headers: token ? { authorization: `Bearer ${token}` } : {} });
    const entry = await get('/runbook/runbook.js');
    expect(entry.statusCode).toBe(200);
    expect(entry.headers['content-type']).toMatch(/^application\/javascript/);
    expect(entry.headers['cache-control']).toBe('private, no-cache');
    // JavaScript, not TypeScript: no type import or annotation is left.
    expect(entry.body).not.toMatch(/import type|: RunStatus/);
    const imported = [...entry.body.matchAll(/from '\.\/([\w-]+\.js)'/g)].map((m) => m[1]);
    expect(imported).toContain('run-rate.js');
    for (const name of imported) expect((await get(`/runbook/${name}`)).statusCode, name).toBe(200);
    expect((await get('/runbook/no-such-module.js')).statusCode).toBe(404);
    expect((await get('/runbook/runbook.js', null)).statusCode).toBe(401);
  });
});
