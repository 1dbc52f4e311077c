// The process entry points as the Procfile starts them: config errors stop a
// process with one line and exit 1; SIGTERM stops it cleanly.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../dev/pouch-server.js';
import { processEnv } from '../dev/processes.js';
import { createHarness, waitFor, type Harness } from './support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('processes');
});
afterAll(() => h?.close());

const envOf = (h: Harness, extra: Record<string, string | undefined> = {}) => processEnv(h.config, { LOG_LEVEL: 'info', ...extra });

function run(entry: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

describe('process start-up', () => {
  it.each([
    ['DATABASE_URL', { DATABASE_URL: undefined }],
    ['MOVER_API_TOKEN', { MOVER_API_TOKEN: '' }],
    ['WORKER_CONCURRENCY', { WORKER_CONCURRENCY: 'eight' }],
    ['REDIS_URL', { REDIS_URL: 'http://not-redis' }],
    ['DRY_RUN', { DRY_RUN: 'maybe' }],
  ])('stops with exit 1 and one line naming %s', async (name, extra) => {
    const p = run('src/workers/worker.ts', envOf(h, extra));
    expect(await p.exited).toBe(1);
    const lines = p.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
  });

  it('runs a worker that serves its own metrics on METRICS_PORT, stops cleanly on SIGTERM and never logs the token', async () => {
    const metricsPort = await freePort();
    const p = run('src/workers/worker.ts', envOf(h, { METRICS_PORT: String(metricsPort) }));
    await waitFor('worker started', () => p.out().includes('worker started'), 20_000, 100);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(metrics).toContain('# TYPE mover_org_duration_seconds histogram');
    expect(metrics).toContain('# TYPE mover_orgs_finished_total counter');
    expect(metrics).toContain('# TYPE mover_couchdb_requests_total counter');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.out()).toContain('worker stopping');
    expect(p.out() + p.err()).not.toContain(h.config.apiToken);
  });

  it('runs the api: healthz answers, readyz sees every store, SIGTERM stops it', async () => {
    const port = await freePort();
    const p = run('src/api/server.ts', envOf(h, { PORT: String(port) }));
    await waitFor('api listening', () => p.out().includes('Server listening'), 20_000, 100);
    expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()).toEqual({ status: 'ok' });
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    // The probe's CouchDB request is counted, by what it is.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${h.config.apiToken}` } })).text();
    expect(metrics).toMatch(/^mover_couchdb_requests_total\{op="health"\} [1-9]/m);
    expect((await fetch(`http://127.0.0.1:${port}/settings`)).status).toBe(401);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.out() + p.err()).not.toContain(h.config.apiToken);
  });
});
