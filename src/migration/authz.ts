// couch id → authz id for an org's documents: the account snapshot first,
// then opscode_account itself for objects newer than the snapshot, so that a
// group made yesterday is not taken for one with "missing authz data".
import type { Logger } from 'pino';
import type { Stores } from './stores.js';
import { authzIds } from '../db/account-snapshot.js';
import { classifyPgError } from '../stores/postgres.js';
import type { CouchDoc } from '../stores/couch-docs.js';

export async function authzForDocs(ctx: Stores, docs: CouchDoc[], log?: Logger): Promise<Map<string, string>> {
  let authz: Map<string, string>;
  try {
    authz = await authzIds(
      ctx.db,
      docs.map((d) => d._id),
    );
  } catch (err) {
    throw classifyPgError(err, 'read authz ids');
  }
  const unknownIds = docs.map((d) => d._id).filter((id) => !authz.has(id));
  if (unknownIds.length) {
    for (const [id, a] of await ctx.couch.findAuthJoins(unknownIds)) {
      authz.set(id, a);
      log?.info({ doc_id: id }, 'authz id found in opscode_account (newer than the account snapshot)');
    }
  }
  return authz;
}
