// Apache CouchDB itself, for the tests and the benchmarks, beside PouchDB
// Server (dev/pouch-server.ts). No package offers CouchDB and none is
// started here: a real one is only ever given by URL, credentials in it (the
// tests' COUCHDB_TEST_URL, the benchmarks' BENCH_COUCHDB_URL), e.g. docker
// compose's couchdb service at http://admin:admin@127.0.0.1:5984. Such a
// CouchDB is shared (by parallel test files, by runs from other checkouts),
// so whoever uses it creates databases under names of its own and deletes
// them (dev/estate.ts, dropEstate). Without a URL the tests' real-CouchDB
// variants are skipped, saying why; with one that does not answer as a
// CouchDB admin, whoever was given it stops with one line saying so.

/** The variable naming the tests' real CouchDB. */
export const TEST_URL_VAR = 'COUCHDB_TEST_URL';
/** The URL to give as the example: docker compose's couchdb service (docker compose up -d couchdb), published on the loopback. */
export const EXAMPLE_URL = 'http://admin:admin@127.0.0.1:5984';

export type RealCouchSource = { kind: 'url'; url: string } | { kind: 'none'; why: string };

/** The real CouchDB the tests run on: the one COUCHDB_TEST_URL names, or why there is none. */
export function realCouchSource(env: Record<string, string | undefined> = process.env): RealCouchSource {
  const url = env[TEST_URL_VAR]?.trim().replace(/\/+$/, '');
  if (url) return { kind: 'url', url };
  // No parentheses: the reason goes into skipped tests' titles, "(skipped: ...)", and is read back from there.
  return { kind: 'none', why: `${TEST_URL_VAR} is unset` };
}

/**
 * `http://admin:***@host:port`: every user:password@ in the text (a URL's, or
 * one without a scheme) with the password hidden, up to the last @ of the
 * host part, as a URL parser reads it.
 */
export function maskCredentials(text: string): string {
  return text.replace(/([^\s/:@"'`]+):[^\s/"'`]*@/g, '$1:***@');
}

/** A request to the CouchDB at `url`: its credentials sent as a header (fetch takes none in the URL). */
export function couchFetch(url: string, path: string, init: RequestInit = {}): Promise<Response> {
  const u = new URL(url);
  const headers: Record<string, string> = {};
  if (u.username || u.password)
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = u.password = '';
  return fetch(u.toString().replace(/\/$/, '') + path, { ...init, headers: { ...headers, ...(init.headers as Record<string, string> | undefined) } });
}

const cause = (err: unknown) => {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message;
};

/**
 * Why the CouchDB at `url` cannot be used to create and delete databases (a
 * line naming `what` gave it, and how to mend it), or undefined if it can:
 * a http(s) URL, a server that answers, takes the credentials, and signs
 * them in as an admin (only an admin creates databases in CouchDB 3).
 */
export async function couchUnusable(url: string, what: string): Promise<[string, string?] | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [`${what}: that is not a URL`, `give one such as ${EXAMPLE_URL}`];
  }
  if (!['http:', 'https:'].includes(parsed.protocol)) return [`${what}: ${maskCredentials(url)} is not an http(s) URL`, `give one such as ${EXAMPLE_URL}`];
  const shown = maskCredentials(url);
  const adminHint = "put an admin's name and password in the URL: http://NAME:PASSWORD@host:port";
  let session: { userCtx?: { roles?: string[] } };
  try {
    const res = await couchFetch(url, '/_session', { signal: AbortSignal.timeout(5000) });
    if (res.status === 401 || res.status === 403)
      return [`${what}: the CouchDB at ${shown} refused these credentials (HTTP ${res.status}: ${(await res.text()).trim().slice(0, 120)})`, adminHint];
    if (!res.ok) return [`${what}: the server at ${shown} answered GET /_session with HTTP ${res.status}: is it a CouchDB?`];
    session = (await res.json()) as typeof session;
  } catch (err) {
    return [`${what}: cannot reach a CouchDB at ${shown}: ${cause(err)}`];
  }
  if (!session.userCtx?.roles?.includes('_admin'))
    return [`${what}: creating databases takes a CouchDB admin, and ${shown} is not signed in as one`, adminHint];
  return undefined;
}

/** What the server's welcome says it is ("CouchDB 3.5.0"); throws, naming `what`, if it is not Apache CouchDB. */
export async function realCouchVersion(url: string, what: string): Promise<string> {
  const res = await couchFetch(url, '/', { signal: AbortSignal.timeout(5000) }).catch((err: unknown) => {
    throw new Error(`${what}: cannot reach a CouchDB at ${maskCredentials(url)}: ${cause(err)}`);
  });
  if (!res.ok) throw new Error(`${what}: GET / of ${maskCredentials(url)} answered HTTP ${res.status}`);
  const body = (await res.json()) as { couchdb?: string; version?: string };
  if (!body.couchdb) throw new Error(`${what}: the server at ${maskCredentials(url)} is not Apache CouchDB: ${JSON.stringify(body).slice(0, 160)}`);
  return `CouchDB ${body.version}`;
}

/**
 * The real CouchDB at `url`, checked: its version, or an Error of one line
 * (naming `what` gave the URL, never the password) when it does not answer,
 * refuses the credentials, is no admin's, or is not Apache CouchDB.
 */
export async function connectRealCouch(url: string, what: string): Promise<{ url: string; version: string }> {
  const why = await couchUnusable(url, what);
  if (why) throw new Error(why.join('; '));
  return { url, version: await realCouchVersion(url, what) };
}
