// `npm run demo` stopped as a terminal stops it: Ctrl-C sends SIGINT to the
// whole foreground process group. The demo must remove everything it made,
// whatever it was doing: its throwaway PostgreSQL, Redis and PouchDB Server
// (their data folders and processes), its database and Redis keys, and the
// databases it seeded into a CouchDB it was given (scripts/demo.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startPouchServer, type PouchServer } from '../dev/pouch-server.js';
import { waitFor } from './support/wait.js';

const PG_ADMIN = process.env.MOVER_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const tmps: string[] = [];
let couch: PouchServer | undefined;
afterAll(async () => {
  await couch?.stop();
  for (const t of tmps) rmSync(t, { recursive: true, force: true });
});

/** The demo in a process group of its own, as a shell runs a foreground job; its output gathered. */
function demo(args: string[], env: Record<string, string>): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], {
    env: { ...process.env, DEMO_ORGS: '24', LOG_LEVEL: 'silent', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

/** Waits until the demo said what `ok` looks for; a demo that exits first fails it at once (judged after the wait, which a throw inside would only retry). */
async function until(what: string, ok: () => boolean, d: { out: () => string; child: ChildProcess }, ms = 180_000): Promise<void> {
  await waitFor(
    () => `${what}; the demo said:\n${d.out()}`,
    () => ok() || d.child.exitCode !== null,
    ms,
    200,
  );
  if (!ok()) throw new Error(`the demo exited (${d.child.exitCode}) before ${what}; it said:\n${d.out()}`);
}

/** Processes whose command line names this folder (the throwaway servers' data and config live there). */
const processesIn = (dir: string) => spawnSync('pgrep', ['-af', dir], { encoding: 'utf8' }).stdout.trim();

const demoDatabases = async () => {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  const { rows } = await c.query(`SELECT datname FROM pg_database WHERE datname LIKE 'mover_demo_%' ORDER BY 1`);
  await c.end();
  return rows.map((r) => r.datname as string);
};

describe('the demo, stopped by Ctrl-C to its process group', () => {
  it('with --keep on throwaway PostgreSQL, Redis and PouchDB Server: prints the page at the start, and leaves no process or folder behind', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'demo-test-'));
    tmps.push(tmp);
    // As the system temp folder is: the throwaway PostgreSQL runs as the postgres user when the demo runs as root.
    chmodSync(tmp, 0o1777);
    // No Redis or PostgreSQL where the demo looks: it starts throwaway ones, in this test's own temp folder.
    const d = demo(['--keep'], { TMPDIR: tmp, MOVER_PG_ADMIN_URL: 'postgres://postgres@127.0.0.1:1/postgres', MOVER_REDIS_BASE_URL: 'redis://127.0.0.1:1' });
    await until('the stack to stay up', () => d.out().includes('the stack stays up'), d);
    const out = d.out();
    expect(out).toContain('started a throwaway redis-server');
    expect(out).toContain('started a throwaway cluster');
    // The page's address and token come before the first phase, so it can be watched during the run.
    expect(out.indexOf('watch it on the runbook page: http://127.0.0.1:')).toBeGreaterThan(-1);
    expect(out.indexOf('watch it on the runbook page')).toBeLessThan(out.indexOf('— phase 1'));
    expect(out).toContain('demo ok');
    // Not a terminal: each change printed once, not the whole block every poll.
    const lines = out.split('\n');
    for (const l of ['phase 3: Migrate the rest — running', '  [x] 3.1  Set the pacing (sleep time), if the start named one'])
      expect(lines.filter((x) => x === l).length, l).toBeLessThanOrEqual(1);
    expect(readdirSync(tmp).filter((f) => f.startsWith('mover-')).length).toBeGreaterThanOrEqual(3);
    expect(processesIn(tmp)).not.toBe('');
    process.kill(-d.child.pid!, 'SIGINT');
    expect(await d.exited).toBe(130);
    // (tsx, which runs the demo here, keeps its own cache there: not the demo's.)
    expect(readdirSync(tmp).filter((f) => !f.startsWith('tsx-'))).toEqual([]);
    expect(processesIn(tmp)).toBe('');
  }, 240_000);

  it('mid-run on a CouchDB given by DEMO_COUCHDB_URL: its databases there, and its own database, are removed', async () => {
    couch = await startPouchServer();
    const before = await demoDatabases();
    const d = demo([], { DEMO_COUCHDB_URL: couch.url });
    await until('phase 3', () => d.out().includes('— phase 3'), d);
    expect(d.out()).not.toContain('--couchdb puts its password');
    const made = (await (await fetch(`${couch.url}/_all_dbs`)).json()) as string[];
    expect(made).toContain('opscode_account');
    expect(made.filter((n) => n.startsWith('chef_')).length).toBeGreaterThan(20);
    process.kill(-d.child.pid!, 'SIGINT');
    expect(await d.exited).toBe(130);
    expect(d.out()).toContain('SIGINT: removing what the demo made');
    const left = (await (await fetch(`${couch.url}/_all_dbs`)).json()) as string[];
    expect(left.filter((n) => n === 'opscode_account' || n.startsWith('chef_'))).toEqual([]);
    expect(await demoDatabases()).toEqual(before);
  }, 240_000);
});
