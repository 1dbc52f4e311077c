// Writes that landed in an org's CouchDB database after mover's copy read it
// (requests the Chef API accepted just before 503 went up). Only containers
// and groups matter: a change to any other document (a node, a role) does not
// make the copy stale.
import { type Change } from '../stores/couch.js';
import { isOrgObject } from '../stores/couch-docs.js';

/**
 * The ids of changes the copy missed: a document the copy read that now has
 * another revision (or is deleted), or a container or group it did not read.
 * `read` maps each document the copy read to the revision it read.
 */
export function lateWrites(changes: Change[], read: Map<string, string | undefined>): string[] {
  const late: string[] = [];
  for (const c of changes) {
    if (read.has(c.id)) {
      if (c.deleted || c.doc?._rev !== read.get(c.id)) late.push(c.id);
    } else if (!c.deleted && c.doc && isOrgObject(c.doc)) {
      late.push(c.id);
    }
  }
  return late;
}
