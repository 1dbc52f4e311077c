// Stores a fault test or the fault benchmark may crash and restart: a redis-server and a PostgreSQL
// of its own on free ports (never the shared ones), and a TCP proxy in front
// of PouchDB Server that can refuse every connection for a while.
import { stopAtExit, throwawayServers } from './processes.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './pouch-server.js';

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

export interface PrivateServer {
  url: string;
  port: number;
  /** Killed at once, as a crash would (SIGKILL for Redis, an immediate shutdown for Postgres). */
  crash(): Promise<void>;
  /** Started again on the same port and data (Redis replays its append-only file; Postgres recovers). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server with an append-only file, fsync'd every second, as production runs it. */
export async function startPrivateRedis(): Promise<PrivateServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mover-redis-'));
  let child: ChildProcess;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore', detached: throwawayServers.ownProcessGroup },
    );
    await until(`redis-server on ${port}`, () => answers(port));
  };
  await start();
  const forget = stopAtExit(() => child.kill('SIGKILL'));
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async crash() {
      child.kill('SIGKILL');
      await exited(child);
    },
    restart: start,
    async stop() {
      forget();
      child.kill('SIGKILL');
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pgBin(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(a) - Number(b)) : [];
  for (const v of versions.reverse()) if (existsSync(join(root, v, 'bin', name))) return join(root, v, 'bin', name);
  return name;
}

/** initdb refuses root: as root, the server runs as the postgres user, as Debian's does. */
const asPostgres = (cmd: string, args: string[]): [string, string[]] =>
  process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];

/** A throwaway PostgreSQL cluster (trust auth, no fsync: a test's data need not outlive it); `settings` are more of its `-c` options. */
export async function startPrivatePostgres(settings: Record<string, string> = {}): Promise<PrivateServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mover-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    chmodSync(dir, 0o755);
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    chownSync(dir, Number(pw.stdout.trim()), Number(gid.stdout.trim()));
  }
  const [initCmd, initArgs] = asPostgres(pgBin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  let child: ChildProcess;
  const start = async () => {
    const [cmd, args] = asPostgres(pgBin('postgres'), [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'max_connections=200',
      ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ]);
    child = spawn(cmd, args, { stdio: 'ignore', detached: throwawayServers.ownProcessGroup });
    await until(`postgres on ${port}`, async () => {
      const r = spawnSync(pgBin('pg_isready'), ['-h', '127.0.0.1', '-p', String(port)], { encoding: 'utf8' });
      return r.status === 0;
    });
  };
  await start();
  // SIGQUIT is PostgreSQL's immediate shutdown: every backend dies at once, recovery runs at the next start.
  const quitNow = () => spawnSync('pkill', ['-QUIT', '-f', `postgres -D ${data}`]);
  const forget = stopAtExit(quitNow);
  const quit = async () => {
    quitNow();
    await exited(child);
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    crash: quit,
    restart: start,
    async stop() {
      forget();
      await quit();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CutProxy {
  url: string;
  /** Refuses every connection and drops the open ones, as a CouchDB that went away. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP proxy on the loopback to targetHost:targetPort (a CouchDB given by URL may be on another host) that can be cut. */
export async function startCutProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<CutProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = createConnection({ host: targetHost, port: targetPort });
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => s.destroy()); // the other side is closed with it below; nothing to report in a test proxy
        }
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const shut = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  await listen();
  return { url: `http://127.0.0.1:${port}`, down: shut, up: listen, close: shut };
}

/** A Redis Cluster of `masters` nodes (no replicas) on free ports, made with redis-cli --cluster create. */
export async function startPrivateRedisCluster(masters = 3): Promise<{ url: string; ports: number[]; stop(): Promise<void> }> {
  const nodes: { port: number; dir: string; child: ChildProcess }[] = [];
  for (let i = 0; i < masters; i++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'mover-cluster-'));
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--appendonly',
        'no',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    nodes.push({ port, dir, child });
  }
  for (const n of nodes) await until(`cluster node on ${n.port}`, () => answers(n.port));
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
    encoding: 'utf8',
  });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  await until('the cluster to be ok', async () => {
    const info = spawnSync('redis-cli', ['-p', String(nodes[0].port), 'cluster', 'info'], { encoding: 'utf8' });
    return /cluster_state:ok/.test(info.stdout);
  });
  return {
    url: `redis://127.0.0.1:${nodes[0].port}`,
    ports: nodes.map((n) => n.port),
    async stop() {
      for (const n of nodes) {
        n.child.kill('SIGKILL');
        await exited(n.child);
        rmSync(n.dir, { recursive: true, force: true });
      }
    },
  };
}
