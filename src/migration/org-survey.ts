// The estate survey's read of one org (docs/domain.md, "The estate survey"):
// its CouchDB database paged through once, and its containers and groups
// planned into rows by the migration's own code (authzForDocs, planObjects),
// so what the survey says would be skipped is what the migration would skip.
// Writes nothing anywhere.
import type { Logger } from 'pino';
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

export interface OrgCopy extends OrgRead {
  plan: ObjectPlan;
  /** How long the read, the authz look-up and the planning took: the copy's part of a migration that the survey can time. */
  copy_ms: number;
}

/**
 * The org read and planned as the migration's copy would plan it. Throws the
 * store's error: an OrgDataError for the org's own database (missing: 404),
 * anything else for a store that did not answer.
 */
export async function surveyCopy(stores: Stores, guid: string, log: Logger): Promise<OrgCopy> {
  const started = performance.now();
  const read = await readOrgDatabase(stores, guid);
  const authz = await authzForDocs(stores, read.objects, log);
  const plan = planObjects(read.objects, authz);
  return { ...read, plan, copy_ms: Math.round(performance.now() - started) };
}
