// Turns an org's container and group documents into SQL rows, applying the
// rules for messy data. Every skipped document is returned with its reason so
// the job can log it with the org name and document id.
import type { ObjectRow, ObjectTable } from './types.js';
import { docType, TYPES, type CouchDoc } from '../stores/couch-docs.js';

export type SkipReason = 'missing_authz' | 'no_name' | 'duplicate_name' | 'duplicate_authz' | 'bad_id';

export interface SkippedDoc {
  docId: string;
  table: ObjectTable;
  reason: SkipReason;
  keptDocId?: string;
}

export interface ObjectPlan {
  containers: ObjectRow[];
  groups: ObjectRow[];
  skipped: SkippedDoc[];
  /** Rows whose requester_id was unusable and got the placeholder. */
  noRequester: string[];
}

const HEX32 = /^[0-9a-f]{32}$/i;
export const UNKNOWN_REQUESTER = '0'.repeat(32);

/** Where a document of each Chef type goes: its table, and the field that holds its name. */
const TARGET_OF_TYPE: Record<string, { table: ObjectTable; nameField: string }> = {
  [TYPES.container]: { table: 'containers', nameField: 'containername' },
  [TYPES.group]: { table: 'groups', nameField: 'groupname' },
};

/**
 * The rules (docs/domain.md, §4 "Messy data"):
 * - no authz join for the document (or a malformed authz id): skipped, as the legacy tool did;
 * - name missing, not a string, or blank: skipped;
 * - _id longer than the 36 characters the column holds: skipped;
 * - two documents of one type with the same name: the one with the smaller _id is kept;
 * - two documents with the same authz id: the one with the smaller _id is kept;
 * - requester_id missing or malformed: migrated with last_updated_by = 32 zeros.
 */
export function planObjects(docs: CouchDoc[], authz: Map<string, string>, now = new Date()): ObjectPlan {
  const plan: ObjectPlan = { containers: [], groups: [], skipped: [], noRequester: [] };
  const byName = new Map<string, string>();
  const byAuthz = new Map<string, string>();
  const sorted = [...docs].sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  for (const doc of sorted) {
    const target = TARGET_OF_TYPE[docType(doc) ?? ''];
    if (!target) continue;
    const skip = (reason: SkipReason, keptDocId?: string) =>
      plan.skipped.push({ docId: doc._id, table: target.table, reason, ...(keptDocId ? { keptDocId } : {}) });
    const rawName = doc[target.nameField];
    const name = typeof rawName === 'string' ? rawName : '';
    const authzId = authz.get(doc._id);
    if (doc._id.length > 36) {
      skip('bad_id');
      continue;
    }
    if (!authzId || !HEX32.test(authzId)) {
      skip('missing_authz');
      continue;
    }
    if (name.trim() === '') {
      skip('no_name');
      continue;
    }
    const nameKey = `${target.table}\u0000${name}`;
    const keptByName = byName.get(nameKey);
    if (keptByName) {
      skip('duplicate_name', keptByName);
      continue;
    }
    const keptByAuthz = byAuthz.get(authzId.toLowerCase());
    if (keptByAuthz) {
      skip('duplicate_authz', keptByAuthz);
      continue;
    }
    byName.set(nameKey, doc._id);
    byAuthz.set(authzId.toLowerCase(), doc._id);
    let requester = typeof doc.requester_id === 'string' ? doc.requester_id : '';
    if (!HEX32.test(requester)) {
      plan.noRequester.push(doc._id);
      requester = UNKNOWN_REQUESTER;
    }
    plan[target.table].push({ id: doc._id, authz_id: authzId.toLowerCase(), name, last_updated_by: requester.toLowerCase(), created_at: now, updated_at: now });
  }
  return plan;
}
