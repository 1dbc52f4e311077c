// The CouchDB a benchmark (or the demo) runs against: PouchDB Server in
// memory (dev/pouch-server.ts) unless BENCH_COUCHDB_URL names a real
// CouchDB (credentials in the URL; dev/couchdb-server.ts), which is not
// ours: the estate gets an account database named for this process, and its
// databases are deleted at the end. Also what talking to a CouchDB whose URL
// carries credentials needs here: fetch with them as a header, and URLs
// masked for printing.
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connectRealCouch, couchFetch, couchUnusable, EXAMPLE_URL, maskCredentials } from '../../dev/couchdb-server.js';
import { dropEstate } from '../../dev/estate.js';
import { startPouchServer } from '../../dev/pouch-server.js';

export { couchFetch, maskCredentials } from '../../dev/couchdb-server.js';

/** The variable naming the benchmarks' real CouchDB. */
export const BENCH_URL_VAR = 'BENCH_COUCHDB_URL';

/** Which CouchDB a benchmark runs on: PouchDB Server in memory, or the real one at a URL. */
export type CouchChoice = { kind: 'pouchdb' } | { kind: 'url'; url: string };

export interface BenchCouch {
  /** PouchDB Server started here, a CouchDB from BENCH_COUCHDB_URL, or one the demo was given (--couchdb). */
  kind: 'pouchdb' | 'url' | 'given';
  /** The base URL, with the credentials in it where the server needs them (as COUCHDB_URL takes it). */
  url: string;
  /** What the server says it is: "PouchDB Server 4.2.0 (in memory)", "CouchDB 3.5.0". */
  version: string;
  /**
   * The account database of this estate: opscode_account, or one named for
   * this process on a CouchDB that is not ours (BENCH_COUCHDB_URL), which then
   * goes into the config as couchdbAccountDb.
   */
  accountDb: string;
  /** The server's processes on this machine, for CPU and RSS (none when it runs elsewhere). */
  pids(): number[];
  /** Stops the server (or, on a CouchDB that is not ours, deletes the databases this estate made). */
  stop(): Promise<void>;
}

/**
 * Which CouchDB the benchmark runs on, checked before anything is made: one
 * line and exit 1 where BENCH_COUCHDB_URL does not answer as a CouchDB admin,
 * or where the old BENCH_COUCH is still set.
 */
export async function couchChoice(env: Record<string, string | undefined> = process.env): Promise<CouchChoice> {
  if (env.BENCH_COUCH !== undefined) {
    console.error(
      `BENCH_COUCH is no longer read: unset it, and set ${BENCH_URL_VAR} to a real CouchDB's URL (e.g. ${EXAMPLE_URL}), or leave that unset for PouchDB Server in memory`,
    );
    process.exit(1);
  }
  const url = env[BENCH_URL_VAR]?.trim().replace(/\/+$/, '');
  if (!url) return { kind: 'pouchdb' };
  const why = await couchUnusable(url, BENCH_URL_VAR);
  if (why) {
    console.error(maskCredentials(why.join('; ')));
    process.exit(1);
  }
  return { kind: 'url', url };
}

/** `url` (e.g. a proxy's) with the credentials `from` carries. */
export function withCredentialsOf(url: string, from: string): string {
  const target = new URL(url);
  const source = new URL(from);
  target.username = source.username;
  target.password = source.password;
  return target.toString().replace(/\/$/, '');
}

/** What the server's welcome says it is (any CouchDB-protocol server: the demo's --couchdb may name one). */
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

/** Starts PouchDB Server in memory, or connects to the real CouchDB chosen. */
export async function startCouch(choice: CouchChoice): Promise<BenchCouch> {
  if (choice.kind === 'pouchdb') {
    const pouch = await startPouchServer();
    return {
      kind: 'pouchdb',
      url: pouch.url,
      version: `${await welcomeOf(pouch.url)} (in memory)`,
      accountDb: 'opscode_account',
      pids: () => (pouch.process.pid ? [pouch.process.pid] : []),
      stop: () => pouch.stop(),
    };
  }
  const real = await connectRealCouch(choice.url, BENCH_URL_VAR);
  // Not ours, and maybe shared: this estate has an account database of its own (its orgs' guids are random) and deletes what it made.
  const accountDb = `opscode_account_bench_${randomBytes(4).toString('hex')}`;
  const drop = async () => void (await dropEstate(real.url, accountDb));
  const unguard = dropOnAbort(drop);
  return {
    kind: 'url',
    url: real.url,
    version: real.version,
    accountDb,
    pids: () => localCouchPids(real.url),
    async stop() {
      unguard();
      await drop();
    },
  };
}

/**
 * A benchmark that crashes or is stopped (Ctrl-C, SIGTERM) on a CouchDB that
 * is not ours deletes its databases there first: thousands of them would
 * otherwise stay behind. Returns what takes the guard off.
 */
function dropOnAbort(drop: () => Promise<void>): () => void {
  const abort = (code: number, what: unknown) => {
    console.error(what instanceof Error ? what : String(what));
    console.error(`deleting this benchmark's databases from ${BENCH_URL_VAR} before exiting`);
    drop()
      .catch((err: Error) => console.error(`could not delete them: ${maskCredentials(err.message)}`))
      .finally(() => process.exit(code));
  };
  const onError = (err: unknown) => abort(1, err);
  const onSignal = (signal: NodeJS.Signals) => abort(130, signal);
  process.once('uncaughtException', onError);
  process.once('unhandledRejection', onError);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/** One line for a benchmark's header: which server, where (credentials masked). */
export function describeCouch(couch: BenchCouch): string {
  const from = { pouchdb: `${BENCH_URL_VAR} unset`, url: BENCH_URL_VAR, given: '--couchdb' }[couch.kind];
  const spin = couch.kind === 'pouchdb' ? '' : couchBusyWait(couch.url);
  return `CouchDB server: ${couch.version} at ${maskCredentials(couch.url)} (${from})${spin ? `; ${spin}` : ''}`;
}

/**
 * Whether a local CouchDB's Erlang schedulers spin before they sleep, read
 * off its VM's command line. By default they do, and the spin is counted as
 * the server's CPU: a load that leaves CouchDB idle between requests (the
 * fleet's, its workers busy elsewhere) shows more CPU a request than one that
 * keeps it busy, for no more work (docs/operating.md, "CouchDB's CPU during a run").
 */
function couchBusyWait(url: string): string {
  const [pid] = localCouchPids(url);
  if (!pid) return '';
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch (err) {
    return `its command line could not be read (${(err as Error).message}): whether its schedulers spin is not known`;
  }
  const off = args.some((a, i) => a === '-sbwt' && args[i + 1] === 'none');
  return off ? 'schedulers do not busy-wait (+sbwt none)' : "schedulers busy-wait when idle (Erlang's default): its CPU includes the spin";
}

/**
 * The Erlang VM of a CouchDB on this machine (a loopback URL: a local install
 * or docker compose's couchdb, whose processes the host sees too), for its
 * CPU; none for a CouchDB elsewhere. Found by its command line: beam.smp
 * running couchdb.
 */
export function localCouchPids(url: string): number[] {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) return [];
  // [b]: the shell execSync starts has the pattern in its own command line, and must not match it.
  return execSync(`pgrep -f '[b]eam.smp.*couchdb' || true`).toString().split('\n').filter(Boolean).map(Number);
}
