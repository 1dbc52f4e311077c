// The estate survey's read of one org (docs/domain.md, "The estate survey"):
// its CouchDB database paged through once, and its containers and groups
// planned into rows by the migration's own code (authzForDocs, planObjects),
// so what the survey says would be skipped is what the migration would skip.
// Writes nothing anywhere.
import type { Logger } from 'pino';
import { isDataError, type OrgDataError } from '../errors.js';
import { performance } from 'node:perf_hooks';
import { isOrgObject, orgDatabaseName, type CouchDoc } from '../stores/couch-docs.js';
import { authzForDocs } from './authz.js';
import { planObjects, type ObjectPlan } from './plan-objects.js';
import type { Stores } from './stores.js';

/**
 * Documents a page. A database of up to this many is read by one _all_docs
 * request (a typical org has a few dozen); a larger one holds one page in
 * memory at a time, plus its containers and groups.
 */
export const SURVEY_PAGE = 1000;

export interface OrgRead {
  /** Its containers and groups. */
  objects: CouchDoc[];
  /** Every document in the database (design documents included, deleted ones not). */
  documents: number;
  /** Their size as JSON, as CouchDB sends them. */
  bytes: number;
}

/** The org database, page by page: its containers and groups kept, every document counted and weighed. */
export async function readOrgDatabase(stores: Stores, guid: string): Promise<OrgRead> {
  const read: OrgRead = { objects: [], documents: 0, bytes: 0 };
  for await (const page of stores.couch.pages(orgDatabaseName(guid), SURVEY_PAGE)) {
    read.documents += page.length;
    for (const doc of page) {
      read.bytes += Buffer.byteLength(JSON.stringify(doc));
      if (isOrgObject(doc)) read.objects.push(doc);
    }
  }
  return read;
}

export interface OrgCopy extends Omit<OrgRead, 'objects'> {
  plan: ObjectPlan;
  /**
   * The copy's part of a migration that the survey can time: the read of the
   * org database, its planning, and its share of the authz look-up it was
   * planned with.
   */
  copy_ms: number;
}

/** Most containers and groups whose authz ids are looked up at once: a batch of huge orgs is planned a few at a time, so memory stays bounded. */
export const PLAN_GROUP_OBJECTS = 2000;

/**
 * Each org read (one after another) and planned as the migration's copy
 * would plan it; several orgs' authz ids are looked up in one call
 * (authzForDocs, the snapshot first, then opscode_account). An org whose own
 * database cannot be read (missing: a 404) has its OrgDataError instead; an
 * error of a store that did not answer is thrown.
 */
export async function surveyCopies(stores: Stores, guids: string[], log: Logger): Promise<Map<string, OrgCopy | OrgDataError>> {
  const out = new Map<string, OrgCopy | OrgDataError>();
  let pending: { guid: string; read: OrgRead; ms: number }[] = [];
  let pendingObjects = 0;
  const plan = async () => {
    if (!pending.length) return;
    const started = performance.now();
    const authz = await authzForDocs(
      stores,
      pending.flatMap((p) => p.read.objects),
      log,
    );
    const authzShare = (performance.now() - started) / pending.length;
    for (const { guid, read, ms } of pending) {
      const t = performance.now();
      const planned = planObjects(read.objects, authz);
      out.set(guid, { documents: read.documents, bytes: read.bytes, plan: planned, copy_ms: Math.round(ms + authzShare + performance.now() - t) });
    }
    pending = [];
    pendingObjects = 0;
  };
  for (const guid of guids) {
    const started = performance.now();
    try {
      const read = await readOrgDatabase(stores, guid);
      pending.push({ guid, read, ms: performance.now() - started });
      pendingObjects += read.objects.length;
    } catch (err) {
      if (!isDataError(err)) throw err;
      out.set(guid, err);
      continue;
    }
    if (pendingObjects >= PLAN_GROUP_OBJECTS) await plan();
  }
  await plan();
  return out;
}
