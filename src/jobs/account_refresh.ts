// account_refresh: reads opscode_account page by page into a new account
// snapshot and swaps it in (legacy mover_manager:create_account_dets/0).
import type { Job, Queue } from 'bullmq';
import type { Context } from '../context.js';
import * as snapshot from '../db/account-snapshot.js';
import { errorMessage } from '../errors.js';
import { docType, TYPES } from '../stores/couch-docs.js';
import type { JobKind } from '../frame/kind.js';
import { ACCOUNT_REFRESH } from '../queue-names.js';

export const type = ACCOUNT_REFRESH;

/** A task, not a run: one job at a time, queued by POST /account/refresh or by a phase step. */
export const kind: JobKind = { type, slotsPerProcess: 1, process: (ctx) => refreshAccounts(ctx) };
const HEX32 = /^[0-9a-f]{32}$/i;

/** Queues a refresh, or joins the one already queued or running: one refresh at a time across the fleet. */
export async function queueRefresh(queue: Queue): Promise<Job> {
  const [pending] = await queue.getJobs(['waiting', 'active', 'prioritized'], 0, 0);
  return pending ?? (await queue.add(type, {}, { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } }));
}

export interface RefreshResult {
  snapshotId: string;
  orgs: number;
  authzJoins: number;
  skippedDocs: number;
}

export async function refreshAccounts(ctx: Context, pageSize = 5000): Promise<RefreshResult> {
  const log = ctx.log.child({ job: type });
  const snapshotId = await snapshot.beginSnapshot(ctx.db);
  // Best effort: without it, live AuthJoin look-ups for objects newer than the snapshot scan the database.
  await ctx.couch
    .ensureAuthzLookup()
    .catch((err) => log.warn({ err: errorMessage(err) }, 'could not make the AuthJoin look-up (index or view) on opscode_account'));
  let orgs = 0;
  let joins = 0;
  let skipped = 0;
  const skip = (docId: string, reason: string) => {
    skipped++;
    log.warn({ doc_id: docId, reason }, 'account document skipped');
  };
  try {
    for await (const page of ctx.couch.pages(ctx.couch.accountDb, pageSize)) {
      const pageOrgs: snapshot.AccountOrg[] = [];
      const pageJoins: { couchId: string; authzId: string }[] = [];
      for (const doc of page) {
        if (doc._id.startsWith('_design/')) continue;
        const t = docType(doc);
        if (t === TYPES.organization) {
          const orgName = typeof doc.name === 'string' ? doc.name : '';
          const guid = typeof doc.guid === 'string' ? doc.guid.toLowerCase() : '';
          if (!orgName) skip(doc._id, 'organization without a name');
          else if (!HEX32.test(guid)) skip(doc._id, `organization ${orgName} has no valid guid`);
          else pageOrgs.push({ name: orgName, guid, precreated: doc.full_name === 'Pre-created' });
        } else if (t === TYPES.authJoin) {
          const couchId = doc.user_object_id;
          const authzId = doc.auth_object_id;
          if (typeof couchId !== 'string' || !couchId || typeof authzId !== 'string' || !HEX32.test(authzId))
            skip(doc._id, 'auth join without a usable user_object_id/auth_object_id');
          else pageJoins.push({ couchId, authzId: authzId.toLowerCase() });
        }
      }
      orgs += await snapshot.addOrgs(ctx.db, snapshotId, pageOrgs);
      joins += await snapshot.addAuthzJoins(ctx.db, snapshotId, pageJoins);
    }
    // CouchDB builds a view or Mango index on its first query: ask it once
    // now, so no org waits for that build later with 503 up.
    const warm = Date.now();
    await ctx.couch.warmAuthzLookup().then(
      () => log.info({ ms: Date.now() - warm }, 'AuthJoin look-up on opscode_account built'),
      (err) => log.warn({ err: errorMessage(err) }, 'could not build the AuthJoin look-up on opscode_account; the first org that needs it will'),
    );
    await snapshot.finishSnapshot(ctx.db, snapshotId, skipped);
  } catch (err) {
    log.error({ err: errorMessage(err), snapshot_id: snapshotId }, 'account refresh failed; the previous snapshot stays current');
    await snapshot
      .failSnapshot(ctx.db, snapshotId, errorMessage(err))
      .catch((e) => log.error({ err: errorMessage(e), snapshot_id: snapshotId }, 'could not mark the snapshot failed'));
    throw err;
  }
  log.info({ snapshot_id: snapshotId, orgs, authz_joins: joins, skipped_docs: skipped }, 'account snapshot swapped in');
  return { snapshotId, orgs, authzJoins: joins, skippedDocs: skipped };
}
