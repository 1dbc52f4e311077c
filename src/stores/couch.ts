import nano from 'nano';
import { InfrastructureError, OrgDataError } from '../errors.js';

export type CouchDoc = Record<string, unknown> & { _id: string; _rev?: string };

export const TYPES = {
  organization: 'Mixlib::Authorization::Models::Organization',
  authJoin: 'Mixlib::Authorization::AuthJoin',
  container: 'Mixlib::Authorization::Models::Container',
  group: 'Mixlib::Authorization::Models::Group',
} as const;

/** DOMAIN.md: a document's type is the first of these fields that is present. */
export function docType(doc: Record<string, unknown>): string | undefined {
  for (const field of ['json_class', 'couchrest-type', 'type']) {
    if (field in doc) return typeof doc[field] === 'string' ? (doc[field] as string) : undefined;
  }
  return undefined;
}

export function orgDatabaseName(guid: string): string {
  return `chef_${guid}`;
}

export class Couch {
  readonly server: nano.ServerScope;
  constructor(url: string, readonly accountDb = 'opscode_account') {
    this.server = nano({ url });
  }

  async ping(): Promise<void> {
    await this.server.info();
  }

  /**
   * Pages through a database with _all_docs, so memory holds one page at a
   * time however large the database is.
   */
  async *pages(dbName: string, pageSize = 2000): AsyncGenerator<CouchDoc[]> {
    const db = this.server.use<Record<string, unknown>>(dbName);
    let startkey: string | undefined;
    for (;;) {
      const params: nano.DocumentFetchParams = { include_docs: true, limit: pageSize + 1 };
      if (startkey !== undefined) params.start_key = startkey;
      const res = await couchCall(() => db.list(params), `read ${dbName}`);
      const rows = res.rows.filter((r) => r.doc);
      const page = rows.slice(0, pageSize).map((r) => r.doc as unknown as CouchDoc);
      if (page.length) yield page;
      if (rows.length <= pageSize) return;
      startkey = rows[pageSize].id;
    }
  }

  /**
   * Reads only the org's containers and groups with a Mango query (not the
   * whole org database), paging by _id so a huge org stays within memory.
   */
  async readOrgObjects(guid: string, pageSize = 500): Promise<CouchDoc[]> {
    const dbName = orgDatabaseName(guid);
    const db = this.server.use<Record<string, unknown>>(dbName);
    const wanted = [TYPES.container, TYPES.group];
    const typeMatch = { $or: ['json_class', 'couchrest-type', 'type'].map((f) => ({ [f]: { $in: wanted } })) };
    const out: CouchDoc[] = [];
    let after = '';
    for (;;) {
      const res = await couchCall(
        () =>
          db.find({
            selector: { $and: [{ _id: { $gt: after } }, typeMatch] },
            sort: [{ _id: 'asc' }],
            limit: pageSize,
          } as nano.MangoQuery),
        `read ${dbName}`,
      );
      const docs = res.docs as unknown as CouchDoc[];
      for (const d of docs) if (wanted.includes(docType(d) as never)) out.push(d);
      if (docs.length < pageSize) return out;
      after = docs[docs.length - 1]._id;
    }
  }

  /**
   * Looks AuthJoins up in opscode_account itself, for objects created after
   * the account snapshot was taken. Uses the Mango index made by
   * ensureAuthzIndex when it exists (CouchDB scans without it).
   */
  async findAuthJoins(couchIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!couchIds.length) return out;
    const db = this.server.use<Record<string, unknown>>(this.accountDb);
    const res = await couchCall(
      () => db.find({ selector: { user_object_id: { $in: couchIds } }, limit: couchIds.length * 4 } as nano.MangoQuery),
      `read ${this.accountDb}`,
    );
    for (const d of res.docs as unknown as CouchDoc[]) {
      if (docType(d) === TYPES.authJoin && typeof d.user_object_id === 'string' && typeof d.auth_object_id === 'string') {
        out.set(d.user_object_id, d.auth_object_id.toLowerCase());
      }
    }
    return out;
  }

  /** A Mango index on user_object_id, so live AuthJoin look-ups do not scan opscode_account. */
  async ensureAuthzIndex(): Promise<void> {
    const db = this.server.use(this.accountDb);
    await couchCall(() => db.createIndex({ index: { fields: ['user_object_id'] }, name: 'mover-authz-by-object', ddoc: 'mover-authz' }), `index ${this.accountDb}`);
  }

  /** Removes documents (used by cleanup); returns ids that could not be deleted. */
  async bulkDelete(dbName: string, docs: { _id: string; _rev: string }[]): Promise<string[]> {
    const db = this.server.use(dbName);
    const res = await couchCall(() => db.bulk({ docs: docs.map((d) => ({ ...d, _deleted: true })) }), `delete from ${dbName}`);
    return res.filter((r) => r.error).map((r) => r.id ?? '');
  }
}

/**
 * 404 on a database is the org's problem (its chef_<guid> database is
 * missing); anything else (refused, reset, timeout, 5xx) is CouchDB's.
 */
export async function couchCall<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const e = err as { statusCode?: number; message?: string; error?: string };
    if (e.statusCode === 404) throw new OrgDataError(`${what}: not found in CouchDB`, { statusCode: 404 });
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500 && e.statusCode !== 401 && e.statusCode !== 403 && e.statusCode !== 429) {
      throw new OrgDataError(`${what}: CouchDB answered ${e.statusCode} ${e.error ?? ''}`.trim(), { statusCode: e.statusCode });
    }
    throw new InfrastructureError(`${what}: ${e.message ?? String(err)}`, 'couchdb', { cause: err });
  }
}
