// Apache CouchDB itself, for the tests, the benchmarks and the demo, beside
// PouchDB Server (src/dev/pouch-server.ts). No package offers CouchDB, so it
// comes from one of two places:
// - COUCHDB_TEST_URL: a CouchDB someone runs (credentials in the URL); shared,
//   so each user of it names its own account database and deletes what it made;
// - ../shared/couchdb next to the repository: a relocatable CouchDB 3.5 whose
//   start-couchdb.sh starts a private node (a data folder and two ports of its
//   own) in 2-3 s; that node can be SIGKILLed and restarted on the same data.
// With neither, realCouchSource() says why, and the real-CouchDB variants skip.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './pouch-server.js';

/** The admin start-couchdb.sh makes (CouchDB 3 has no admin party: every request carries it). */
const ADMIN = { user: 'admin', password: 'admin' };

export type RealCouchSource = { kind: 'script'; script: string } | { kind: 'url'; url: string } | { kind: 'none'; why: string };

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above src/dev');
    dir = up;
  }
  return dir;
}

/** Where a real CouchDB comes from here: COUCHDB_TEST_URL first, then ../shared/couchdb. */
export function realCouchSource(env: Record<string, string | undefined> = process.env): RealCouchSource {
  if (env.COUCHDB_TEST_URL?.trim()) return { kind: 'url', url: env.COUCHDB_TEST_URL.trim().replace(/\/+$/, '') };
  const script = resolve(repoRoot(), '..', 'shared', 'couchdb', 'start-couchdb.sh');
  if (existsSync(script)) return { kind: 'script', script };
  return { kind: 'none', why: `no real CouchDB: COUCHDB_TEST_URL is unset and ${script} is not there` };
}

export interface RealCouch {
  /** The base URL with the admin credentials in it, as COUCHDB_URL takes it. */
  url: string;
  /** What the server says it is ("CouchDB 3.5.0"). */
  version: string;
  /** A node started here (absent for COUCHDB_TEST_URL, which this process does not own). */
  node?: {
    dir: string;
    port: number;
    /** beam.smp's pid, read from the node's pid file. */
    pid(): number;
    /** SIGKILL to beam.smp, as a crash would; resolves once the port refuses. */
    kill(): Promise<void>;
    /** Started again on the same port, data folder and distribution port. */
    restart(): Promise<void>;
  };
  /** Stops the node and removes its folder; for COUCHDB_TEST_URL, does nothing (the caller deletes its databases). */
  stop(): Promise<void>;
}

const withCredentials = (base: string) => {
  const u = new URL(base);
  u.username = ADMIN.user;
  u.password = ADMIN.password;
  return u.toString().replace(/\/$/, '');
};

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', fail);
    child.on('exit', (code) => done({ code: code ?? 1, out, err }));
  });
}

async function refuses(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) });
    return false;
  } catch {
    return true; // refused or no answer: what a killed node looks like
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // ESRCH: no such process
  }
}

async function welcome(url: string): Promise<string> {
  const u = new URL(url);
  const auth = u.username
    ? { authorization: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` }
    : undefined;
  u.username = u.password = '';
  const res = await fetch(u, { headers: auth });
  if (!res.ok) throw new Error(`GET / of the CouchDB at ${u.origin} answered ${res.status}`);
  const body = (await res.json()) as { couchdb?: string; version?: string };
  if (!body.couchdb) throw new Error(`the server at ${u.origin} is not CouchDB: ${JSON.stringify(body).slice(0, 200)}`);
  return `CouchDB ${body.version}`;
}

/**
 * A real CouchDB: the one COUCHDB_TEST_URL names, or a private node started
 * from ../shared/couchdb in a folder of its own (single node, databases split
 * into `q` shards, 2 by default as CouchDB 3 makes them). Throws if there is none.
 */
export async function startRealCouch(opts: { q?: number } = {}): Promise<RealCouch> {
  const source = realCouchSource();
  if (source.kind === 'none') throw new Error(source.why);
  if (source.kind === 'url') return { url: source.url, version: await welcome(source.url), stop: async () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'mover-couchdb-'));
  const ini = join(dir, 'extra.ini');
  writeFileSync(ini, `[cluster]\nq = ${opts.q ?? 2}\n`);
  let last = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    // Both ports chosen here (never "the first free one above"), so two nodes started at once cannot take each other's.
    const [port, distPort] = [await freePort(), await freePort()];
    if (distPort === port) continue;
    const node = privateNode(source.script, dir, port, distPort, ini);
    const r = await node.start();
    if (r.code === 0) {
      const url = withCredentials(`http://127.0.0.1:${port}`);
      return { url, version: await welcome(url), node, stop: () => node.stop() };
    }
    last = r.err.trim().split('\n').slice(-5).join(' | ');
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`CouchDB did not start from ${source.script}: ${last}`);
}

/** A node of start-couchdb.sh in `dir`: started, killed, started again on the same data, stopped for good. */
function privateNode(script: string, dir: string, port: number, distPort: number, ini: string) {
  const pid = () => Number(readFileSync(join(dir, 'couchdb.pid'), 'utf8').trim());
  const start = () =>
    run('bash', [script, dir, String(port)], {
      COUCH_DIST_PORT: String(distPort),
      COUCH_EXTRA_INI: ini,
      COUCH_START_TIMEOUT: '30',
      COUCH_LOG_LEVEL: 'warning',
    });
  const kill = async () => {
    const victim = pid();
    if (!alive(victim)) return;
    process.kill(victim, 'SIGKILL');
    // Gone once the pid is reaped and the port refuses (start-couchdb.sh will not start over a live pid).
    for (let i = 0; i < 200 && (alive(victim) || !(await refuses(`http://127.0.0.1:${port}/`))); i++) await sleep(50);
  };
  // The node runs in a session of its own: a test process that dies without stopping it must not leave it behind.
  const orphanGuard = () => {
    if (existsSync(join(dir, 'couchdb.pid')) && alive(pid())) process.kill(pid(), 'SIGKILL');
  };
  process.once('exit', orphanGuard);
  return {
    dir,
    port,
    pid,
    start,
    kill,
    async restart() {
      const again = await start();
      if (again.code !== 0) throw new Error(`CouchDB did not start again in ${dir}: ${again.err.trim().split('\n').slice(-5).join(' | ')}`);
    },
    async stop() {
      process.off('exit', orphanGuard);
      // Its data goes with its folder: nothing to shut down cleanly for.
      if (existsSync(join(dir, 'couchdb.pid'))) await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
