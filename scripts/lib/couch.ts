// The CouchDB a benchmark (or the demo) runs against, chosen by BENCH_COUCH:
// unset or `pouchdb`, PouchDB Server in memory (src/dev/pouch-server.ts);
// `real`, Apache CouchDB itself (src/dev/couchdb-server.ts: COUCHDB_TEST_URL,
// or a private node from ../shared/couchdb). Also what talking to a CouchDB
// whose URL carries credentials needs here: an Authorization header for
// fetch (which refuses credentials in the URL) and URLs masked for printing.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { realCouchSource, startRealCouch, type RealCouch } from '../../src/dev/couchdb-server.js';
import { dropEstate } from '../../src/dev/estate.js';
import { startPouchServer } from '../../src/dev/pouch-server.js';

export const BENCH_COUCH_VALUES = ['pouchdb', 'real'] as const;
export type CouchKind = (typeof BENCH_COUCH_VALUES)[number];

export interface BenchCouch {
  kind: CouchKind | 'given';
  /** The base URL, with the credentials in it where the server needs them (as COUCHDB_URL takes it). */
  url: string;
  /** What the server says it is: "PouchDB Server 4.2.0 (in memory)", "CouchDB 3.5.0". */
  version: string;
  /**
   * The account database of this estate: opscode_account, or one named for
   * this process on a CouchDB others use too (COUCHDB_TEST_URL), which then
   * goes into the config as couchdbAccountDb.
   */
  accountDb: string;
  /** The server's processes on this machine, for CPU and RSS (none when it is not ours). */
  pids(): number[];
  /** A CouchDB node started here, which can be SIGKILLed and restarted on its data. */
  node?: RealCouch['node'];
  /** Stops the server (or, on a CouchDB that is not ours, deletes the databases this estate made). */
  stop(): Promise<void>;
}

/** Which CouchDB BENCH_COUCH asks for; one line naming the variable and exit 1 for a value it does not know, or `real` where there is none. */
export function couchChoice(env: Record<string, string | undefined> = process.env): CouchKind {
  const value = env.BENCH_COUCH?.trim() || 'pouchdb';
  if (!(BENCH_COUCH_VALUES as readonly string[]).includes(value)) {
    console.error(
      `BENCH_COUCH=${value} is not a choice: leave it unset or set "pouchdb" (PouchDB Server in memory), or "real" (Apache CouchDB from COUCHDB_TEST_URL or ../shared/couchdb)`,
    );
    process.exit(1);
  }
  if (value === 'real') {
    const source = realCouchSource(env);
    if (source.kind === 'none') {
      console.error(`BENCH_COUCH=real: ${source.why}`);
      process.exit(1);
    }
  }
  return value as CouchKind;
}

/**
 * `http://admin:***@host:port`: every user:password@ in the text (a URL's, or
 * one without a scheme) with the password hidden, up to the last @ of the
 * host part, as a URL parser reads it.
 */
export function maskCredentials(text: string): string {
  return text.replace(/([^\s/:@"'`]+):[^\s/"'`]*@/g, '$1:***@');
}

/** The URL without its credentials, and the Authorization header they make (fetch takes no credentials in the URL). */
export function splitCredentials(url: string): { base: string; headers: Record<string, string> } {
  const u = new URL(url);
  const headers: Record<string, string> = {};
  if (u.username || u.password)
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  return { base: u.toString().replace(/\/$/, ''), headers };
}

/** `url` (e.g. a proxy's) with the credentials `from` carries. */
export function withCredentialsOf(url: string, from: string): string {
  const target = new URL(url);
  const source = new URL(from);
  target.username = source.username;
  target.password = source.password;
  return target.toString().replace(/\/$/, '');
}

/** A request to the CouchDB at `url` (credentials from the URL, sent as a header). */
export function couchFetch(url: string, path: string, init: RequestInit = {}): Promise<Response> {
  const { base, headers } = splitCredentials(url);
  return fetch(base + path, { ...init, headers: { ...headers, ...(init.headers as Record<string, string> | undefined) } });
}

/** What the server's welcome says it is. */
export async function welcomeOf(url: string): Promise<string> {
  const res = await couchFetch(url, '/', { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET / answered ${res.status}`);
  const body = (await res.json()) as Record<string, unknown>;
  if (typeof body.couchdb === 'string') return `CouchDB ${String(body.version)}`;
  if ('express-pouchdb' in body) return `PouchDB Server ${String(body.version)}`;
  const vendor = Object.keys(body).find((k) => /welcome/i.test(String(body[k])));
  if (!vendor) throw new Error(`not a CouchDB: ${JSON.stringify(body).slice(0, 120)}`);
  return `${vendor} ${String(body.version)}`;
}

/** beam.smp and its children (couchjs, which runs the JavaScript views), for their CPU and memory. */
function processTree(pid: number): number[] {
  try {
    const children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
    return [pid, ...children.flatMap(processTree)];
  } catch {
    return [pid]; // pgrep exits 1 when there are no children
  }
}

/** Starts (or connects to) the CouchDB chosen: PouchDB Server in memory, or a real CouchDB. */
export async function startCouch(kind: CouchKind = couchChoice()): Promise<BenchCouch> {
  if (kind === 'pouchdb') {
    const pouch = await startPouchServer();
    return {
      kind,
      url: pouch.url,
      version: `${await welcomeOf(pouch.url)} (in memory)`,
      accountDb: 'opscode_account',
      pids: () => (pouch.process.pid ? [pouch.process.pid] : []),
      stop: () => pouch.stop(),
    };
  }
  const real = await startRealCouch();
  const { node } = real;
  if (node)
    return { kind, url: real.url, version: real.version, accountDb: 'opscode_account', pids: () => processTree(node.pid()), node, stop: () => real.stop() };
  // COUCHDB_TEST_URL: a CouchDB others use too. This estate has an account database of its own and deletes what it made.
  const accountDb = `opscode_account_bench_${randomBytes(4).toString('hex')}`;
  return {
    kind,
    url: real.url,
    version: `${real.version} (COUCHDB_TEST_URL)`,
    accountDb,
    pids: () => [],
    async stop() {
      await dropEstate(real.url, accountDb);
      await real.stop();
    },
  };
}

/** One line for a benchmark's header: which server, where (credentials masked). */
export const describeCouch = (couch: BenchCouch) =>
  `CouchDB server: ${couch.version} at ${maskCredentials(couch.url)} (BENCH_COUCH=${couch.kind === 'given' ? '-' : couch.kind})`;
