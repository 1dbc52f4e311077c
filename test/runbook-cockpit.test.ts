// The runbook page as an operator uses it, in a real browser (Debian's
// chromium through playwright-core): a run says how it ended; a failed org
// is found in the page's list, opened, ticked and retried (confirmed in a
// dialog); an earlier run is chosen and shown; a completed phase started
// again is refused without the word and done with it; phase 3's form shows
// the current sleep time; the charts draw the run, each on its own axis, and
// the page stays usable at 420 px and at 1400 px. Screenshots in
// .test-results/runbook-1400.png and runbook-420.png (docs/runbook.png is the
// first). End state of Postgres asserted through the api.
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitPhase } from './support/phases.js';
import { createHarness, TOKEN, waitFor, waitForRunEnd, type Harness } from './support/harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const T = 'phase_2_migration';
const GOOD = ['pc-good-0', 'pc-good-1', 'pc-good-2', 'pc-good-3'];
const BAD = ['pc-bad-0', 'pc-bad-1'];
let h: Harness;
let url: string;
let browser: Browser;
let firstRun: string;

beforeAll(async () => {
  h = await createHarness('runbook-cockpit');
  await h.seed([...GOOD.map((name) => ({ name })), ...BAD.map((name) => ({ name, noDatabase: true }))]);
  await h.api('PUT', '/settings/drain-wait', { ms: 300, acknowledge_risk: true });
  h.startWorkers({ phaseTickMs: 200 });
  url = await h.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  expect((await h.api('POST', '/phases/1/start', { orgs: [...GOOD, ...BAD], concurrency: 2 })).status).toBe(202);
  expect((await waitPhase(h, 1, ['completed', 'failed', 'halted'])).state).toBe('completed');
  const run = (await h.api('GET', `/migrations/${T}/status`)).body.run_id;
  if (!run) throw new Error('phase 1 completed without a run');
  firstRun = run;
}, 90_000);
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

async function open(width: number): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 1000 } });
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${url}/login?next=/runbook`);
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL(`${url}/runbook`), page.click('button[type=submit]')]);
  return page;
}
const text = (page: Page, sel: string) => page.textContent(sel).then((t) => t ?? '');
const waitText = (page: Page, sel: string, re: RegExp, timeout = 30_000) =>
  page.waitForFunction(([s, src]) => new RegExp(src).test(document.querySelector(s)?.textContent ?? ''), [sel, re.source] as const, { timeout });

describe('the runbook page, as an operator uses it', () => {
  it('says how the run ended, finds a failed org, opens it, retries it, and shows an earlier run when chosen', async () => {
    const page = await open(1400);
    await waitText(page, '#runstate', new RegExp(`run ${firstRun}: completed`));
    expect(await text(page, '#stop-reason')).toBe('ended: every org it took was processed: 4 completed, 2 failed');
    await page.waitForSelector('table.failed-orgs');
    const rows = await page.$$eval('table.failed-orgs tr', (trs) => trs.slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(rows.map((r) => r.slice(1, 4))).toEqual([
      ['pc-bad-0', 'migrate', 'data'],
      ['pc-bad-1', 'migrate', 'data'],
    ]);
    // The org's detail, from the list.
    await page.click('a.org-link:text("pc-bad-0")');
    await waitText(page, '#org', /phase_2_migration: failed at migrate/);
    expect(await text(page, '#org')).toMatch(/Chef serves it: containers from couchdb, groups from couchdb/);

    // Retry only the ticked one: confirmed in a dialog, then a run of it alone.
    await page.check('input.retry-pick[value="pc-bad-0"]');
    await page.click('button.retry');
    await waitText(page, '#msg', /Retry 1 org\(s\): done/);
    const end = await waitForRunEnd(h);
    expect(end.run_id).not.toBe(firstRun);
    expect(end).toMatchObject({ state: 'completed', orgs_completed: 1, objects_failed: 1 });
    expect((await h.api('GET', '/orgs/pc-bad-0')).body.states[T]).toMatchObject({ state: 'failed', run_id: end.run_id });
    expect((await h.api('GET', '/orgs/pc-bad-1')).body.states[T]).toMatchObject({ state: 'failed', run_id: firstRun });
    await waitText(page, '#runstate', new RegExp(`run ${end.run_id}: completed`));

    // The earlier run, chosen: its state and its failed orgs (pc-bad-1 only now).
    await page.selectOption('#run-choice', firstRun);
    await waitText(page, '#runstate', new RegExp(`run ${firstRun}: completed`));
    await page.waitForFunction(() => [...document.querySelectorAll('table.failed-orgs a.org-link')].map((a) => a.textContent).join() === 'pc-bad-1');
    await page.selectOption('#run-choice', '');
    await waitText(page, '#runstate', new RegExp(`run ${end.run_id}: completed`));
    await page.context().close();
  }, 120_000);

  it('refuses a completed phase started again without the word, and runs it with it; phase 3 shows the sleep time as it is', async () => {
    const page = await open(1400);
    await page.waitForSelector('button.start-1');
    expect(await text(page, 'button.start-1')).toBe('Run phase 1 again');
    await page.fill('form:has(button.start-1) textarea[name=orgs]', 'pc-good-0');
    await page.click('button.start-1');
    await waitText(page, '#msg', /Run phase 1 again was refused \(409 phase_completed\): phase 1 has completed; it would refresh the account snapshot/);
    expect((await h.api('GET', '/phases/1')).body.state).toBe('completed');
    await page.fill('form:has(button.start-1) textarea[name=orgs]', 'pc-good-0');
    await page.check('input.again-1');
    await page.click('button.start-1');
    await waitText(page, '#msg', /Run phase 1 again: done/);
    expect((await waitPhase(h, 1, ['completed', 'failed', 'halted'])).state).toBe('completed');
    const audit = (await h.api('GET', '/audit?limit=10')).body.entries.find((e) => e.action === 'phase.again');
    expect(audit).toMatchObject({ detail: { phase: 1, params: { orgs: ['pc-good-0'] } } });
    // Phase 3's sleep time field is empty: the current one (0 here) stands unless the operator types one.
    const sleep = page.locator('form:has(button.start-3) input[name=sleep_time_ms]');
    expect(await sleep.inputValue()).toBe('');
    expect(await sleep.getAttribute('placeholder')).toBe('now 0 (unchanged if empty)');
    await page.context().close();
  }, 90_000);

  it('draws each series on its own chart, and stays usable at 1400 px and at 420 px', async () => {
    mkdirSync('.test-results', { recursive: true });
    for (const width of [1400, 420]) {
      const page = await open(width);
      await page.selectOption('#run-choice', firstRun);
      await waitFor(`the charts at ${width} px`, () =>
        page.evaluate(() => {
          const charts = (window as unknown as { __charts?: Record<string, { data: (number | null)[][] }> }).__charts ?? {};
          return ['chart-rate', 'chart-dark', 'chart-p99'].every((id) => (charts[id]?.data[0].length ?? 0) > 0);
        }),
      );
      expect(await text(page, '#resolution')).toBe('one point every 4 s');
      const layout = await page.evaluate(() => ({
        page: document.documentElement.scrollWidth,
        charts: [...document.querySelectorAll('.charts canvas')].map((c) => c.getBoundingClientRect().right),
        tiles: [...document.querySelectorAll('.tile')].map((t) => t.getBoundingClientRect().width),
      }));
      // Nothing wider than the window: no sideways scrolling, charts and tiles inside it.
      expect(layout.page).toBeLessThanOrEqual(width);
      expect(layout.charts).toHaveLength(3);
      for (const right of layout.charts) expect(right).toBeLessThanOrEqual(width);
      for (const w of layout.tiles) expect(w).toBeGreaterThan(100);
      await page.screenshot({ path: `.test-results/runbook-${width}.png`, fullPage: true });
      await page.context().close();
    }
  }, 90_000);
});
