// Starts PouchDB Server (a CouchDB-protocol server) in memory on a free
// loopback port, for tests, the demo and the benchmarks. Nothing else in the
// product knows it is not CouchDB.
import { throwawayServers } from './processes.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PouchServer {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function binary(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'node_modules', '.bin', 'pouchdb-server'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('pouchdb-server not found: run npm ci');
    dir = up;
  }
  return join(dir, 'node_modules', '.bin', 'pouchdb-server');
}

/**
 * How node runs the server: with dev/pouch-all-dbs.cjs, which takes the
 * database-list lookup every request makes out of its one-per-turn queue
 * (why: that file), unless POUCHDB_STOCK=1; and with POUCHDB_NODE_FLAGS
 * (e.g. `--perf-basic-prof` for perf), to look inside the stand-in.
 */
function nodeArgs(): string[] {
  const flags = process.env.POUCHDB_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  return process.env.POUCHDB_STOCK === '1' ? flags : [...flags, '--require', join(dirname(fileURLToPath(import.meta.url)), 'pouch-all-dbs.cjs')];
}

export async function startPouchServer(port?: number): Promise<PouchServer> {
  const p = port ?? (await freePort());
  // Its config.json and log.txt go to a scratch folder, not the repo.
  const dir = mkdtempSync(join(tmpdir(), 'mover-pouch-'));
  // -n, not --no-stdout-logs: its option parser reads that as "stdout-logs: false", and the server went on
  // tailing its own log file to stdout, parsing and colouring a line per request.
  const child = spawn(
    process.execPath,
    [...nodeArgs(), binary(), '--in-memory', '--port', String(p), '--host', '127.0.0.1', '-n', '--config', join(dir, 'config.json')],
    {
      cwd: dir,
      stdio: 'ignore',
      detached: throwawayServers.ownProcessGroup,
    },
  );
  const url = `http://127.0.0.1:${p}`;
  const deadline = Date.now() + 30_000;
  let lastError = 'no answer yet';
  for (;;) {
    try {
      const res = await fetch(url + '/');
      if (res.ok) break;
      lastError = `HTTP ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message; // not up yet; said if it never comes up
    }
    if (child.exitCode !== null) throw new Error(`pouchdb-server exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`pouchdb-server did not start in 30 s (${lastError})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port: p,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
