import { countCouchRequest, type CouchOp } from './round-trips.js';
import nano from 'nano';
import { errorMessage, InfrastructureError, OrgDataError } from '../errors.js';
import { recordCouchRequest } from './couch-latency.js';
import { couchCall, couchError } from './couch-errors.js';
import { retryThroughOutage, type OutagePolicy } from './outage.js';
import { docType, isOrgObject, ORG_OBJECT_TYPES, orgDatabaseName, TYPES, type CouchDoc } from './couch-docs.js';

/** What the server can do, decided once per process by asking it (never by catching failures). */
export interface CouchCapabilities {
  /** _find / _index (CouchDB 2.0 and later; not 1.x). */
  mango: boolean;
  /** What the server said it is, for the logs: "CouchDB 1.6.1", "express-pouchdb 4.2.0". */
  server: string;
}

// CouchDB 1.x has no Mango: AuthJoins are looked up there through this view,
// written into opscode_account by the account refresh (docs/configuration.md, "CouchDB").
export const AUTHZ_VIEW = { ddoc: 'mover', view: 'authz_by_object' };
/** The Mango index the AuthJoin look-up uses (CouchDB 2.x and later). */
export const AUTHZ_INDEX = { ddoc: 'mover-authz', name: 'mover-authz-by-object' };
const AUTHZ_VIEW_DOC = {
  language: 'javascript',
  views: {
    [AUTHZ_VIEW.view]: {
      // The same type rule as docType(): the first of json_class, couchrest-type, type that is present.
      map: `function (doc) {
  var t = 'json_class' in doc ? doc.json_class : ('couchrest-type' in doc ? doc['couchrest-type'] : doc.type);
  if (t === '${TYPES.authJoin}' && typeof doc.user_object_id === 'string' && typeof doc.auth_object_id === 'string') emit(doc.user_object_id, doc.auth_object_id);
}`,
    },
  },
};

/**
 * What GET / says: CouchDB names itself and its version (Mango from 2.0 on);
 * any other server (PouchDB Server, a proxy) leaves mango undecided, to be asked.
 */
export function fromWelcome(info: Record<string, unknown>): { server: string; mango?: boolean } {
  const version = typeof info.version === 'string' || typeof info.version === 'number' ? String(info.version) : '?';
  if (typeof info.couchdb === 'string') return { server: `CouchDB ${version}`, mango: Number.parseInt(version, 10) >= 2 };
  const vendor = Object.keys(info).find((k) => /welcome/i.test(String(info[k]))) ?? 'unknown server';
  return { server: `${vendor} ${version}` };
}

export interface Change {
  id: string;
  deleted: boolean;
  doc?: CouchDoc;
}

/**
 * The op of the request being sent, set around each nano call (Couch.labelled)
 * and read by nano's request log, which sees every request nano sends: the
 * count is complete by construction, and a request sent outside a label
 * shows as `unlabelled`. nano logs a request synchronously, in the call that
 * sends it, so the op only has to hold for the synchronous part of that call.
 * Not an AsyncLocalStorage: on this Node one turns on promise hooks for every
 * promise the process makes, and a worker makes thousands per org
 * (docs/benchmarks-history.md, "Where the workers' CPU went").
 */
let requestOp: CouchOp | undefined;

export class Couch {
  readonly server: nano.ServerScope;
  private caps?: Promise<CouchCapabilities>;
  private authzViewReady?: Promise<void>;
  /** Whether this server returns update_seq with _all_docs; set false the first time it does not. */
  private seqWithAllDocs = true;

  constructor(
    url: string,
    private readonly outage: OutagePolicy,
    readonly accountDb = 'opscode_account',
    private readonly legacyPageSize = 200,
  ) {
    // Uncompressed answers: CouchDB itself sends none compressed, and where something in front of it
    // (PouchDB Server, a proxy) would, mover sits next to it: gzip costs both ends more CPU than the bytes cost.
    this.server = nano({
      url,
      headers: { 'Accept-Encoding': 'identity' },
      // nano logs each request as it sends it ({ method, url, headers }), and each answer ({ err, ... }): the requests are counted.
      log: (entry: unknown) => {
        if (entry && typeof entry === 'object' && 'method' in entry) countCouchRequest(requestOp ?? 'unlabelled');
      },
    });
  }

  /** Runs fn (nano calls) with its requests counted as `op`; no retry (see call). */
  labelled<T>(op: CouchOp, fn: () => Promise<T>): Promise<T> {
    const outer = requestOp;
    requestOp = op;
    try {
      return fn();
    } finally {
      requestOp = outer;
    }
  }

  /**
   * A nano call, its error classified (src/stores/couch-errors.ts), waiting
   * out a CouchDB that is unreachable for up to the grace. Given the database
   * it asks: a 404 from opscode_account (or mover's index or view in it) is
   * not an org's data problem but the account database missing or changed
   * under mover, an infrastructure error that opens the run's breaker with the reason.
   */
  call<T>(op: CouchOp, fn: () => Promise<T>, what: string, dbName?: string): Promise<T> {
    return retryThroughOutage(this.outage, 'couchdb', what, async () => {
      const sent = performance.now();
      try {
        return await couchCall(() => this.labelled(op, fn), what);
      } catch (err) {
        if (dbName === this.accountDb && err instanceof OrgDataError && err.detail?.statusCode === 404) {
          throw new InfrastructureError(
            `${what}: ${this.accountDb} (or mover's index or view in it) is not there; check COUCHDB_URL, then refresh the account snapshot`,
            'couchdb',
            { cause: err },
          );
        }
        throw err;
      } finally {
        // Answered or refused, the request took the server's time: the live-service guard's own figure.
        recordCouchRequest(performance.now() - sent);
      }
    });
  }

  /**
   * CouchDB's own p99 request time over its last stats interval, for the
   * live-service guard: /_node/_local/_stats on 2.x and 3.x (a histogram with
   * percentiles, ms); /_stats on 1.x (mean and deviation only: p99 estimated
   * as mean + 2.33 σ). Sent once, never retried: a guard that cannot read it
   * falls back to mover's own request times. Null, with why, where the server
   * has no such figures (PouchDB Server) or gives unusable ones.
   */
  async requestTimeP99(): Promise<{ p99Ms: number; source: 'couchdb_stats' | 'couchdb_1x_stats' } | { p99Ms: null; why: string }> {
    const caps = await this.capabilities();
    const path = caps.server.startsWith('CouchDB 1.') ? '_stats/couchdb/request_time' : '_node/_local/_stats/couchdb/request_time';
    let body: unknown;
    try {
      body = await this.labelled('guard_stats', () => this.server.request({ path, method: 'GET' }));
    } catch (err) {
      return { p99Ms: null, why: `${caps.server} gives no request-time figures at /${path} (${errorMessage(err)})` };
    }
    const figure = requestTimeFigure(body);
    if (figure === null) return { p99Ms: null, why: `${caps.server}'s /${path} holds no usable request time (${JSON.stringify(body).slice(0, 120)})` };
    return { p99Ms: figure, source: path.startsWith('_stats') ? 'couchdb_1x_stats' : 'couchdb_stats' };
  }

  /**
   * How long CouchDB takes now to answer a small request as Chef sends them
   * (the account database's info), in ms: the live-service guard's figure
   * where CouchDB gives none and mover sent too few requests to tell. Sent
   * once, never retried; an error is the caller's.
   */
  async probeMs(): Promise<number> {
    const sent = performance.now();
    await this.labelled('guard_probe', () => this.server.db.get(this.accountDb));
    return performance.now() - sent;
  }

  /**
   * How many database files CouchDB keeps open ([couchdb] max_dbs_open) and
   * how many shard files an org's database is (opscode_account's
   * `cluster.q`; 1 on 1.x, which has no shards), for the run start's check
   * (src/runs/couchdb-open-dbs.ts). An admin's read: where it cannot be
   * read, why. Sent once, never retried.
   */
  async openDbsLimit(): Promise<{ maxDbsOpen: number; shardsPerDb: number } | { why: string }> {
    const caps = await this.capabilities();
    const path = caps.server.startsWith('CouchDB 1.') ? '_config/couchdb/max_dbs_open' : '_node/_local/_config/couchdb/max_dbs_open';
    let value: unknown;
    let info: { cluster?: { q?: unknown } };
    try {
      value = await this.labelled('open_dbs_check', () => this.server.request({ path, method: 'GET' }));
      info = (await this.labelled('open_dbs_check', () => this.server.db.get(this.accountDb))) as typeof info;
    } catch (err) {
      return { why: `${caps.server} did not answer /${path} or ${this.accountDb}'s info (${errorMessage(err)})` };
    }
    const maxDbsOpen = Number(value);
    const q = info.cluster?.q ?? 1;
    if (!Number.isInteger(maxDbsOpen) || maxDbsOpen <= 0 || typeof q !== 'number' || !Number.isInteger(q) || q < 1)
      return { why: `${caps.server} gave max_dbs_open ${JSON.stringify(value)} and q ${JSON.stringify(q)}: not usable` };
    return { maxDbsOpen, shardsPerDb: q };
  }

  /** The store probe of /readyz and the breaker check (src/stores/health.ts): sent once, never retried. */
  async ping(): Promise<void> {
    await this.labelled('health', () => this.server.info());
  }

  /**
   * Once per process: a server that says it is CouchDB 1.x has no Mango; any
   * other is asked for opscode_account's index list (_index), which only a
   * Mango server answers. A failed question is asked again next time.
   */
  capabilities(): Promise<CouchCapabilities> {
    if (!this.caps) {
      this.caps = this.askCapabilities();
      // The caller gets the error; the cache only forgets it, so the next call asks again.
      this.caps.catch(() => (this.caps = undefined));
    }
    return this.caps;
  }

  private async askCapabilities(): Promise<CouchCapabilities> {
    const { server, mango } = fromWelcome((await this.call('server_info', () => this.server.relax({ path: '' }), 'server info')) as Record<string, unknown>);
    if (mango !== undefined) return { mango, server };
    try {
      await this.labelled('mango_probe', () => this.server.relax({ db: this.accountDb, path: '_index' }));
      return { mango: true, server };
    } catch (err) {
      const e = err as { statusCode?: number; reason?: string; description?: string };
      const dbMissing = /no_db_file|does not exist/i.test(`${e.reason ?? ''} ${e.description ?? ''}`);
      if ((e.statusCode === 404 || e.statusCode === 400) && !dbMissing) return { mango: false, server };
      throw new InfrastructureError(`asking ${server} for Mango on ${this.accountDb}: ${(err as Error).message}`, 'couchdb', { cause: err });
    }
  }

  /**
   * One page of _all_docs with the documents, from `startkey` on: `next` is
   * the id the next page starts at (none: this was the last page) and `seq`
   * the database's update_seq the page was read at, when asked for and the
   * server says it (CouchDB answers `update_seq=true` on _all_docs from the
   * snapshot it read; a server that ignores the parameter leaves it out).
   */
  private async allDocsPage(
    dbName: string,
    startkey: string | undefined,
    size: number,
    withSeq = false,
  ): Promise<{ docs: CouchDoc[]; next?: string; seq?: string }> {
    const db = this.server.use<Record<string, unknown>>(dbName);
    const params: nano.DocumentFetchParams & { update_seq?: boolean } = { include_docs: true, limit: size + 1 };
    if (startkey !== undefined) params.start_key = startkey;
    if (withSeq) params.update_seq = true;
    const op = dbName === this.accountDb ? 'account_read' : 'org_read';
    const res = (await this.call(op, () => db.list(params), `read ${dbName}`, dbName)) as nano.DocumentListResponse<Record<string, unknown>> & {
      update_seq?: unknown;
    };
    // A server that answers 200 without rows (a proxy's error page, a server out of memory) must not pass for an empty page.
    if (!Array.isArray(res?.rows)) throw new InfrastructureError(`read ${dbName}: the server answered _all_docs without rows`, 'couchdb');
    const docs = res.rows.slice(0, size).flatMap((r) => (r.doc ? [r.doc as unknown as CouchDoc] : []));
    return {
      docs,
      ...(res.rows.length > size ? { next: res.rows[size].id } : {}),
      ...(res.update_seq !== undefined && res.update_seq !== null ? { seq: String(res.update_seq) } : {}),
    };
  }

  /**
   * Pages through a database with _all_docs (every CouchDB version has it),
   * so memory holds one page at a time however large the database is.
   */
  async *pages(dbName: string, pageSize = 2000, startkey?: string): AsyncGenerator<CouchDoc[]> {
    let key = startkey;
    do {
      const page = await this.allDocsPage(dbName, key, pageSize);
      if (page.docs.length) yield page.docs;
      key = page.next;
    } while (key !== undefined);
  }

  /** Only the org's containers and groups (see copyOrgObjects). */
  async readOrgObjects(guid: string): Promise<CouchDoc[]> {
    return (await this.copyOrgObjects(guid)).docs;
  }

  /**
   * The org's containers and groups, and an update_seq of its database from
   * no later than the read of any of them: a write landing after the read
   * moves the seq past it (the migration's check_writes goes by that).
   *
   * The first request reads the database's first page (legacyPageSize
   * documents) with _all_docs, with the seq it read them at: an org database
   * that small (most orgs: a dozen containers, a few groups, a few nodes) is
   * read whole by that one request, cheaper for the server than a Mango query,
   * which scans the database the same way (no index on the type fields).
   * A larger one goes on from there: with Mango the server selects the rest;
   * on CouchDB 1.x it is paged through with _all_docs, every other document
   * dropped page by page, so memory holds one page plus the org's containers
   * and groups, whatever else it holds.
   *
   * A server that does not return update_seq with _all_docs has its seq read
   * on its own first, then the database read from its start (and this
   * process remembers not to ask again).
   */
  async copyOrgObjects(guid: string): Promise<{ docs: CouchDoc[]; seq: string }> {
    const dbName = orgDatabaseName(guid);
    const size = this.legacyPageSize;
    const { docs, next, seq } = await this.firstPageWithSeq(dbName, size);
    const out = docs.filter(isOrgObject);
    if (next === undefined) return { docs: out, seq };
    if ((await this.capabilities()).mango) {
      // From the start, not from the page's last id: Mango and _all_docs need not order ids alike; the first page's objects are not kept twice.
      const seen = new Set(out.map((d) => d._id));
      out.push(...(await this.findOrgObjects(dbName, '')).filter((d) => !seen.has(d._id)));
    } else {
      for await (const page of this.pages(dbName, size, next)) out.push(...page.filter(isOrgObject));
    }
    return { docs: out, seq };
  }

  /** The database's first page with the seq it was read at; from a server that does not say it, the seq read first, then the page. */
  private async firstPageWithSeq(dbName: string, size: number): Promise<{ docs: CouchDoc[]; next?: string; seq: string }> {
    if (this.seqWithAllDocs) {
      const page = await this.allDocsPage(dbName, undefined, size, true);
      if (page.seq !== undefined) return { ...page, seq: page.seq };
      this.seqWithAllDocs = false;
    }
    const seq = await this.updateSeq(dbName);
    return { ...(await this.allDocsPage(dbName, undefined, size)), seq };
  }

  /** With Mango: the containers and groups whose _id sorts after `after`, paged by _id. */
  private async findOrgObjects(dbName: string, after: string): Promise<CouchDoc[]> {
    const db = this.server.use<Record<string, unknown>>(dbName);
    const typeMatch = { $or: ['json_class', 'couchrest-type', 'type'].map((f) => ({ [f]: { $in: ORG_OBJECT_TYPES } })) };
    const pageSize = 500;
    const out: CouchDoc[] = [];
    for (;;) {
      const res = await this.call(
        'org_read',
        () => db.find({ selector: { $and: [{ _id: { $gt: after } }, typeMatch] }, sort: [{ _id: 'asc' }], limit: pageSize }),
        `read ${dbName}`,
      );
      const docs = res.docs as unknown as CouchDoc[];
      out.push(...docs.filter(isOrgObject));
      if (docs.length < pageSize) return out;
      after = docs[docs.length - 1]._id;
    }
  }

  /** The database's update_seq (a number on 1.x, an opaque string on 2.x and later), as a string. */
  async updateSeq(dbName: string): Promise<string> {
    const info = await this.call('org_seq', () => this.server.db.get(dbName), `info of ${dbName}`);
    return String(info.update_seq);
  }

  /** Every document changed in the database since `seq`, with its body (deleted ones without), and the seq it reached. */
  async changesSince(dbName: string, seq: string): Promise<{ changes: Change[]; lastSeq: string }> {
    const res = await this.call('org_changes', () => this.server.db.changes(dbName, { since: seq, include_docs: true }), `changes of ${dbName}`);
    const changes = res.results.map((r) => {
      const doc = (r as { doc?: CouchDoc }).doc;
      return { id: r.id, deleted: !!r.deleted, ...(doc && !r.deleted ? { doc } : {}) };
    });
    return { changes, lastSeq: String(res.last_seq) };
  }

  /**
   * Looks AuthJoins up in opscode_account itself, for objects created after
   * the account snapshot was taken: with Mango through its index, on 1.x
   * through mover's view.
   */
  async findAuthJoins(couchIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!couchIds.length) return out;
    const db = this.server.use<Record<string, unknown>>(this.accountDb);
    const keep = (objectId: unknown, authzId: unknown) => {
      if (typeof objectId === 'string' && typeof authzId === 'string') out.set(objectId, authzId.toLowerCase());
    };
    if (!(await this.capabilities()).mango) {
      await this.ensureAuthzLookup();
      const res = await this.call(
        'authz_lookup',
        () => db.view<string>(AUTHZ_VIEW.ddoc, AUTHZ_VIEW.view, { keys: couchIds }),
        `read ${this.accountDb}`,
        this.accountDb,
      );
      for (const r of res.rows) keep(r.key, r.value);
      return out;
    }
    const res = await this.call(
      'authz_lookup',
      () => db.find({ selector: { user_object_id: { $in: couchIds } }, limit: couchIds.length * 4 }),
      `read ${this.accountDb}`,
      this.accountDb,
    );
    for (const d of res.docs as unknown as CouchDoc[]) if (docType(d) === TYPES.authJoin) keep(d.user_object_id, d.auth_object_id);
    return out;
  }

  /**
   * Asks the AuthJoin look-up once, by one key, so the server builds (or
   * brings up to date) its index or view now rather than while an org waits
   * with 503 up. An equality on the indexed field, naming the index: a query
   * the index certainly serves (an $in of many keys may be answered by a
   * scan of the whole database instead, which on a large opscode_account
   * costs more than the build).
   */
  async warmAuthzLookup(): Promise<void> {
    const db = this.server.use<Record<string, unknown>>(this.accountDb);
    await this.ensureAuthzLookup();
    if (!(await this.capabilities()).mango) {
      await this.call(
        'authz_lookup',
        () => db.view<string>(AUTHZ_VIEW.ddoc, AUTHZ_VIEW.view, { key: 'mover-warm-up' }),
        `read ${this.accountDb}`,
        this.accountDb,
      );
      return;
    }
    await this.call(
      'authz_lookup',
      () => db.find({ selector: { user_object_id: 'mover-warm-up' }, use_index: [AUTHZ_INDEX.ddoc, AUTHZ_INDEX.name], limit: 1 }),
      `read ${this.accountDb}`,
      this.accountDb,
    );
  }

  /**
   * Makes live AuthJoin look-ups cheap: a Mango index on user_object_id, or
   * on 1.x the view (written once, then built by CouchDB as it is queried).
   */
  ensureAuthzLookup(): Promise<void> {
    if (!this.authzViewReady) {
      this.authzViewReady = this.makeAuthzLookup();
      this.authzViewReady.catch(() => (this.authzViewReady = undefined));
    }
    return this.authzViewReady;
  }

  private async makeAuthzLookup(): Promise<void> {
    const db = this.server.use<Record<string, unknown>>(this.accountDb);
    if ((await this.capabilities()).mango) {
      await this.call(
        'authz_index',
        () => db.createIndex({ index: { fields: ['user_object_id'] }, name: AUTHZ_INDEX.name, ddoc: AUTHZ_INDEX.ddoc }),
        `index ${this.accountDb}`,
        this.accountDb,
      );
      return;
    }
    const id = `_design/${AUTHZ_VIEW.ddoc}`;
    let current: Record<string, unknown> | null = null;
    try {
      current = await this.labelled('authz_index', () => db.get(id));
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw couchError(err, `read ${this.accountDb}/${id}`);
    }
    if (current && JSON.stringify(current.views) === JSON.stringify(AUTHZ_VIEW_DOC.views)) return;
    await this.call(
      'authz_index',
      () => db.insert({ ...AUTHZ_VIEW_DOC, _id: id, ...(current ? { _rev: current._rev as string } : {}) }),
      `write ${this.accountDb}/${id}`,
      this.accountDb,
    );
  }

  /** Removes documents (used by cleanup); returns ids that could not be deleted. */
  /**
   * Deletes documents by the revisions given, in one request: a document
   * changed since (another revision now) is not deleted but comes back with
   * its error ("conflict"), as does any other refused one.
   */
  async bulkDelete(dbName: string, docs: { _id: string; _rev: string }[]): Promise<{ id: string; error: string }[]> {
    const db = this.server.use(dbName);
    const res = await this.call('org_write', () => db.bulk({ docs: docs.map((d) => ({ ...d, _deleted: true })) }), `delete from ${dbName}`);
    return res.filter((r) => r.error).map((r) => ({ id: r.id ?? '', error: String(r.error) }));
  }
}

/**
 * The p99 in a request_time stats answer: 2.x/3.x `{value: {percentile: [[99, ms], ...], n}}`
 * (null while its window saw no request); 1.x `{couchdb: {request_time: {mean, stddev}}}`.
 * Null for anything else, or a figure that is not a finite, non-negative number.
 */
export function requestTimeFigure(body: unknown): number | null {
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  const b = body as { value?: { percentile?: unknown; n?: unknown }; couchdb?: { request_time?: { mean?: unknown; stddev?: unknown } } } | null;
  const percentiles = b?.value?.percentile;
  if (Array.isArray(percentiles)) {
    if (b?.value?.n === 0) return null;
    const p99 = percentiles.find((p): p is [number, number] => Array.isArray(p) && p[0] === 99)?.[1];
    return ok(p99) ? p99 : null;
  }
  const rt = b?.couchdb?.request_time;
  if (rt && ok(rt.mean)) return rt.mean + 2.33 * (ok(rt.stddev) ? rt.stddev : 0);
  return null;
}
