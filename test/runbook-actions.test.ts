// Acting from the runbook page, in a real browser (Debian's chromium through
// playwright-core), with named operators: alice signs in, starts phases 1 and
// 2 from the page, confirms step 2.1, and the audit log says alice; a refusal
// is shown in the API's words; a change posted without the page's CSRF token
// is refused; the charts draw the run's minutes from Postgres; bob's revoked
// token signs nobody in, and his cookie stops working. Leaves a screenshot in
// .test-results/runbook-actions.png.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/api/operators.js';
import { createHarness, waitFor, type Harness } from './support/harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKENS = { alice: 'alice-page-token-0123456789', bob: 'bob-page-token-0123456789' };
const line = (name: keyof typeof TOKENS) => `${name} ${sha256(TOKENS[name]).toString('hex')}\n`;
const ORGS = Array.from({ length: 6 }, (_, i) => `act-org-${i}`);
let h: Harness;
let url: string;
let browser: Browser;
let file: string;

beforeAll(async () => {
  file = join(mkdtempSync(join(tmpdir(), 'mover-page-operators-')), 'operators');
  writeFileSync(file, line('alice') + line('bob'));
  h = await createHarness('runbook-actions', { operatorsFile: file, apiToken: '' });
  await h.seed(ORGS.map((name) => ({ name })));
  await h.api('PUT', '/settings/drain-wait', { ms: 300, acknowledge_risk: true }, { authorization: `Bearer ${TOKENS.alice}` });
  h.startWorkers({ phaseTickMs: 200 });
  url = await h.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

async function signIn(name: keyof typeof TOKENS): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  await page.goto(`${url}/login?next=/runbook`);
  await page.fill('#token', TOKENS[name]);
  await Promise.all([page.waitForURL(`${url}/runbook`), page.click('button[type=submit]')]);
  await page.waitForSelector(`#me:text("${name}")`);
  return page;
}

const asAlice = { authorization: `Bearer ${TOKENS.alice}` };
const bodyText = (page: Page) => page.evaluate(() => document.body.innerText);

describe('acting from the runbook page', () => {
  it('alice starts phase 1, sees a refusal in words, starts phase 2 and confirms step 2.1; the audit log says alice; the charts draw the run', async () => {
    const bob = await signIn('bob');
    const page = await signIn('alice');
    // Phase 1 says how old the estate survey is; then a survey runs, and the page shows its totals and links its CSV.
    await page.waitForSelector('.survey-age:text("estate survey: none yet")');
    await h.api('POST', '/account/refresh', undefined, asAlice);
    await waitFor('the account snapshot', async () => (await h.api('GET', '/account', undefined, asAlice)).body.orgs === ORGS.length);
    expect((await h.api('POST', '/survey/start', {}, asAlice)).status).toBe(202);
    await page.waitForFunction(() => /estate survey: completed \d+ min ago \(6 orgs\)/.test(document.body.innerText), undefined, { timeout: 60_000 });
    expect(await page.getAttribute('#survey a', 'href')).toBe('/survey/orgs.csv');
    expect(await page.textContent('#survey')).toMatch(/6 of 6 orgs surveyed/);

    await page.fill('form:has(button.start-1) textarea[name=orgs]', ORGS.join('\n'));
    await page.fill('form:has(button.start-1) input[name=concurrency]', '2');
    await page.click('button.start-1');
    await page.waitForFunction(() => /Start phase 1: done, as alice/.test(document.body.innerText));
    await page.waitForFunction(() => /Phase 1: Migrate selected orgs\s+completed/.test(document.body.innerText), undefined, { timeout: 60_000 });

    // Phase 3 before phase 2: the API's 409, in its own words.
    await page.click('button.start-3');
    await page.waitForFunction(() => /Start phase 3 was refused \(409 phase_not_ready\): phase 3 needs phase 2 completed first/.test(document.body.innerText));

    await page.click('button.start-2');
    await page.waitForSelector('button.confirm', { timeout: 30_000 });
    expect(await bodyText(page)).toContain("run: knife ssh role:opscode-account 'sudo /etc/init.d/opscode-org-creator stop'");
    await page.fill('form:has(button.confirm) input[name=note]', 'stopped on all hosts');
    await page.click('button.confirm');
    await page.waitForFunction(() => /Confirm step 2\.1: done, as alice/.test(document.body.innerText));
    await waitFor('step 2.1 done', async () => {
      const p2 = (await h.api('GET', '/phases/2', undefined, asAlice)).body;
      return p2.steps[0].state === 'done' ? p2 : null;
    });
    const audit = (await h.api('GET', '/audit?limit=50', undefined, asAlice)).body.entries as {
      actor: string;
      action: string;
      detail: Record<string, unknown>;
    }[];
    expect(audit.find((e) => e.action === 'phase.confirm')).toMatchObject({ actor: 'alice', detail: { phase: 2, step: '2.1', note: 'stopped on all hosts' } });
    expect(audit.filter((e) => e.action === 'phase.start').map((e) => e.actor)).toEqual(['alice', 'alice']);
    expect((await h.api('GET', '/phases/2', undefined, asAlice)).body.steps[0]).toMatchObject({ confirmed_by: 'alice' });

    // The charts, from the run's minutes in Postgres: points drawn on the canvas.
    await page.waitForFunction(
      () => {
        const c = (window as unknown as { __charts?: Record<string, { data: (number | null)[][] }> }).__charts?.['chart-rate'];
        return !!c && c.data[0].length > 0 && c.data[1].some((v) => v !== null);
      },
      undefined,
      { timeout: 30_000 },
    );
    const painted = await page.evaluate(() => {
      const canvas = document.querySelector('#chart-rate canvas') as HTMLCanvasElement;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
      return n;
    });
    expect(painted).toBeGreaterThan(0);
    mkdirSync('.test-results', { recursive: true });
    await page.screenshot({ path: '.test-results/runbook-actions.png', fullPage: true });

    // A change posted by the signed-in browser without the page's CSRF token: refused, nothing changed.
    const before = (await h.api('GET', '/settings', undefined, asAlice)).body.sleep_time_ms;
    const forged = await page.evaluate(() =>
      fetch('/settings/sleep-time', {
        method: 'PUT',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ms: 1 }),
      }).then(async (r) => ({ status: r.status, body: await r.json() })),
    );
    expect(forged).toMatchObject({ status: 403, body: { error: 'csrf' } });
    expect((await h.api('GET', '/settings', undefined, asAlice)).body.sleep_time_ms).toBe(before);
    // The same change from the page's own form goes through, in alice's name.
    await page.fill('form:has(input[name=ms]) input[name=ms] >> nth=0', '250');
    await page.click('text=Set sleep time');
    await page.waitForFunction(() => /Sleep time: done, as alice/.test(document.body.innerText));
    expect((await h.api('GET', '/settings', undefined, asAlice)).body.sleep_time_ms).toBe(250);

    // bob is revoked: his signed-in browser is refused from its next request, and his token signs nobody in.
    writeFileSync(file, line('alice'));
    await waitFor('bob revoked', async () => (await bob.context().request.get(`${url}/phases`)).status() === 401, 10_000, 50);
    const again = await browser.newContext();
    const p = await again.newPage();
    await p.goto(`${url}/login?next=/runbook`);
    await p.fill('#token', TOKENS.bob);
    await p.click('button[type=submit]');
    await p.waitForSelector("text=That token is not one of this api's operators' tokens");
    expect(p.url()).toBe(`${url}/login`);
    await again.close();
    await bob.context().close();
    await page.context().close();
  }, 180_000);
});
