// No log line, at any level, from the api or a worker, carries the API token
// or a store's password, after a session that opens Bull Board (by ?token=
// and by the sign-in form, with a wrong guess first), and calls the API.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../dev/pouch-server.js';
import { processEnv } from '../dev/processes.js';
import { createHarness, type Harness } from './support/harness.js';

const PASSWORD = 'pw-Zq8-not-in-any-log';
let h: Harness;
let base: string;
const procs: { child: ChildProcess; out: string }[] = [];

beforeAll(async () => {
  h = await createHarness('secrets');
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = processEnv(h.config, {
    // Trust auth ignores the password, so the stores work; the processes still know it.
    DATABASE_URL: h.config.databaseUrl.replace('postgres://postgres@', `postgres://postgres:${PASSWORD}@`),
    LOG_LEVEL: 'trace',
  });
  for (const [entry, extra] of [
    ['src/api/server.ts', { PORT: String(port) }],
    ['src/workers/worker.ts', {}],
  ] as const) {
    const p = { child: spawn(process.execPath, ['--import', 'tsx', entry], { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] }), out: '' };
    p.child.stdout.on('data', (d) => (p.out += d));
    p.child.stderr.on('data', (d) => (p.out += d));
    procs.push(p);
  }
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the api did not start');
}, 60_000);

afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  await h?.close();
});

describe('secrets never reach a log', () => {
  it('keeps the token, a wrong guess and the store password out of every line of the api and the worker', async () => {
    const token = h.config.apiToken;
    const guess = 'guess-Wr0ng-t0ken-x';
    const bearer = { authorization: `Bearer ${token}` };
    // Bull Board by the contract's one-time ?token=, a wrong guess first.
    expect((await fetch(`${base}/admin/queues?token=${guess}`, { redirect: 'manual' })).status).toBe(401);
    const once = await fetch(`${base}/admin/queues?token=${token}`, { redirect: 'manual' });
    expect(once.status).toBe(303);
    const cookie = (once.headers.get('set-cookie') ?? '').split(';')[0];
    expect((await fetch(`${base}/admin/queues`, { headers: { cookie } })).status).toBe(200);
    // The sign-in form, a wrong guess first.
    const form = (t: string) => fetch(`${base}/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: t, next: '/admin/queues' }) });
    expect((await form(guess)).status).toBe(401);
    expect((await form(token)).status).toBe(303);
    // The API, with the token and with a wrong one.
    for (const path of ['/settings', '/migrations/phase_2_migration/status', '/account', '/phases', '/metrics']) {
      expect((await fetch(`${base}${path}`, { headers: bearer })).status, path).toBe(200);
    }
    expect((await fetch(`${base}/settings`, { headers: { authorization: `Bearer ${guess}` } })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 500));
    const logs = procs.map((p) => p.out).join('');
    // The session was logged (trace level), so the check below could have failed.
    expect(logs).toContain('/admin/queues?token=[redacted]');
    expect(logs.split('\n').length).toBeGreaterThan(20);
    for (const secret of [token, guess, PASSWORD])
      expect(logs.includes(secret), `a log line holds ${secret === PASSWORD ? 'the store password' : secret === token ? 'the token' : 'the wrong guess'}`).toBe(
        false,
      );
  }, 60_000);
});
