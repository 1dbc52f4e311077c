// phase_2_migration: the legacy per-org migration, step by step (docs/domain.md),
// with two steps the legacy tool lacked: a preflight before the org goes dark
// and a check for writes that landed after the copy. Claiming the org (ready →
// started) and completing or failing it are the frame's (src/runs/org-job.ts);
// this module is what happens in between, and how an org is put back when
// any of it fails.
import type { Context } from '../context.js';
import { deleteOwnedOrgObjects, replaceOrgObjects } from '../db/org-objects.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { cachedSettings } from '../db/settings.js';
import { OrgDataError } from '../errors.js';
import { authzForDocs } from '../migration/authz.js';
import { compareRows, describeDiff, diffCount } from '../migration/compare.js';
import type { SqlObjects } from '../migration/verify.js';
import { lateWrites } from '../migration/late-writes.js';
import { planObjects, type ObjectPlan } from '../migration/plan-objects.js';
import { orgDatabaseName } from '../stores/couch-docs.js';
import type { OrgMigration, OrgRef } from '../runs/org-job.js';
import { perOrgKind } from '../runs/per-org-kind.js';
import { classifyPgError } from '../stores/postgres.js';

export const type = 'phase_2_migration';

/**
 * Before the org is claimed: make sure it is one this migration may move.
 * Chef serves its containers and groups from CouchDB now, by Chef's own rule
 * (src/chef-routing.ts: SQL only where the merged couchdb_* is exactly
 * "false"), and SQL holds none of its rows that mover did not write
 * (claimGuard below, checked by the claim's own statement). An org that fails
 * either is never started: it is failed at 'preflight' exactly as it was. So
 * is an org whose dl_org_<org> is not a hash (Chef answers 500 for it); a
 * dl_default or dl_override that is not a hash breaks every org, and pauses
 * the run instead (src/darklaunch.ts, src/stores/health.ts).
 */
export async function preflight(ctx: Context, org: OrgRef) {
  const why = await ctx.darklaunch.whyNotServedFrom(org.orgName, 'couchdb');
  if (why) throw new OrgDataError(`${why}; mover moves only orgs Chef serves from CouchDB, so it leaves this one as it is`);
}

const foreignRowsError = (n: number) =>
  new OrgDataError(`SQL already holds ${n} containers/groups rows for this org that mover did not write (made on SQL, or copied some other way); they are left as they are`);

/** Step 1: the org goes dark (503) so nothing writes while it moves. */
export async function setDown(ctx: Context, org: OrgRef) {
  await ctx.darklaunch.setOrgDown(org.orgName, true);
}

/**
 * Step 2: the drain wait (legacy sleep_time after going dark), so writes the
 * Chef API accepted just before 503 land before the copy. The job keeps its
 * slot while it waits: concurrency is the number of orgs dark at once.
 */
export async function drainWait(ctx: Context, org: OrgRef) {
  const ms = (await cachedSettings(ctx)).drainWaitMs;
  if (ms > 0) {
    org.log.debug({ wait_ms: ms }, 'drain wait');
    await sleep(ms);
  }
}

/** The copy one delivery made: what verify checks SQL against, and what check_writes compares CouchDB with. */
interface Copy {
  plan: ObjectPlan;
  /** The org database's update_seq as of the copy's read (or just before it). */
  seq: string;
  /** Every container and group document the copy read, with the revision it read. */
  revs: Map<string, string | undefined>;
  /** The org's rows as the copy's write answered SQL held them after it. */
  written: SqlObjects;
  copies: number;
}
const copies = new WeakMap<OrgRef, Copy>();

/**
 * A seam for tests: runs right after a copy has read the org's documents, so
 * a test can land a write in CouchDB at exactly that moment. Unset in the product.
 */
export const afterCopyRead: { hook?: (org: OrgRef) => Promise<void> } = {};

/** How many times one delivery copies an org whose CouchDB documents keep changing while it is dark. */
export const MAX_COPIES = 3;
/** Rounds of other documents' changes (nodes, roles) check_writes looks through before it gives up. */
const MAX_CHECKS = 10;

/** Step 3: read only the org's containers and groups; write them in one statement. */
export async function migrate(ctx: Context, org: OrgRef) {
  // The seq is from no later than the read: a write landing after it moves the seq, and check_writes sees it.
  const { docs, seq } = await ctx.couch.copyOrgObjects(org.orgId);
  await afterCopyRead.hook?.(org);
  const authz = await authzForDocs(ctx, docs, org.log);
  const plan = planObjects(docs, authz);
  for (const s of plan.skipped) org.log.warn({ doc_id: s.docId, table: s.table, reason: s.reason, kept_doc_id: s.keptDocId }, 'document skipped');
  for (const id of plan.noRequester) org.log.warn({ doc_id: id }, 'requester_id missing or malformed; last_updated_by set to zeros');
  let written;
  try {
    // Old rows go in the same statement: a job delivered twice leaves one set of rows, not two.
    written = await replaceOrgObjects(ctx.db, type, org.orgId, plan);
  } catch (err) {
    throw classifyPgError(err, 'write containers and groups');
  }
  // Checked by the claim too (claimGuard); this is the statement's own guard against a row that appeared since.
  if (written.foreignRows) throw foreignRowsError(written.foreignRows);
  copies.set(org, { plan, seq, revs: new Map(docs.map((d) => [d._id, d._rev])), written: written.sql, copies: (copies.get(org)?.copies ?? 0) + 1 });
  org.log.info({ containers: plan.containers.length, groups: plan.groups.length, skipped: plan.skipped.length, update_seq: seq }, 'org objects written');
}

/**
 * Step 4: SQL holds exactly the planned rows for this org: same ids, names
 * and authz ids, nothing else. Checked on the rows the copy's write answered
 * with (read by that same call, after its inserts), so it costs no round trip.
 */
export async function verify(_ctx: Context, org: OrgRef) {
  const copy = copies.get(org);
  if (!copy) throw new OrgDataError('verify: no copy in this delivery');
  const diff = compareRows(copy.plan, copy.written);
  if (diffCount(diff)) throw new OrgDataError(`verify: SQL differs from CouchDB (${describeDiff(diff)})`, { diff });
}

/**
 * Step 5: no write lost at the switch. Writes the Chef API accepted just
 * before 503 went up may land in CouchDB after the copy read it. If the org
 * database changed since the copy's update_seq and a container or group is
 * among the changes, the org is copied again (after the drain wait, so the
 * rest can land), up to MAX_COPIES; past that it fails and is restored,
 * served from CouchDB, where those writes are.
 *
 * It is the last look before the switch, while the org is still dark and
 * still routed to CouchDB: no new request reaches a dark org, and the switch
 * (clear_503) is one write, so only that write is left unguarded.
 */
export async function checkWrites(ctx: Context, org: OrgRef) {
  const dbName = orgDatabaseName(org.orgId);
  for (let check = 1; check <= MAX_CHECKS; check++) {
    const copy = copies.get(org)!;
    if ((await ctx.couch.updateSeq(dbName)) === copy.seq) return;
    const { changes, lastSeq } = await ctx.couch.changesSince(dbName, copy.seq);
    const late = lateWrites(changes, copy.revs);
    if (!late.length) {
      if (!changes.length) return; // the seq moved only in form (a clustered CouchDB): nothing was written
      copy.seq = lastSeq; // other documents only; look again from there
      continue;
    }
    if (copy.copies >= MAX_COPIES) {
      throw new OrgDataError(`containers/groups were still being written in CouchDB after ${copy.copies} copies (${late.slice(0, 5).join(', ')}${late.length > 5 ? ', ...' : ''}); the org stays on CouchDB`, { late });
    }
    org.log.warn({ late_doc_ids: late.slice(0, 20), copies: copy.copies }, 'containers/groups written after the copy read them; copying the org again');
    await sleep(Math.max((await cachedSettings(ctx)).drainWaitMs, 250));
    await migrate(ctx, org);
    await verify(ctx, org);
  }
  throw new OrgDataError(`the org database kept changing through ${MAX_CHECKS} checks; the org stays on CouchDB`);
}

/**
 * Step 6, the switch: routed to SQL and up again in one write (one HSET of
 * dl_org_<org>): Chef sees the org either dark on CouchDB or up on SQL,
 * and this is the only write check_writes cannot look after.
 */
export async function switchToSql(ctx: Context, org: OrgRef) {
  await ctx.darklaunch.routeToSqlAndUp(org.orgName);
}

/** The steps, in the per-org frame's terms (src/runs/org-job.ts). */
export const migration: OrgMigration = {
  type,
  preflight,
  claimGuard: { name: 'foreign_rows', refusal: foreignRowsError },
  steps: [
    // Recorded by the claim itself: from here on the org may be dark.
    { name: 'set_503', run: setDown },
    { name: 'drain_wait', run: drainWait },
    { name: 'migrate', run: migrate },
    { name: 'verify', run: verify },
    // No checkpoint: lost here, the org is restored just as from set_503 (a commit saved per org).
    { name: 'check_writes', run: checkWrites },
    // Past check_writes SQL holds everything: once the switch may have been written, the org is never moved back.
    // (Named for the 503 it clears, as before routing went in the same write: an org left at clear_503 by an older mover is committed all the same.)
    { name: 'clear_503', run: switchToSql, checkpoint: true },
  ],
  committedFrom: 'clear_503',
  // Served from CouchDB and up again first; only then are the partial rows removed.
  restoreOutside: (ctx, org) => ctx.darklaunch.routeBackToCouch(org.orgName),
  restore: async (_ctx, org, c) => {
    await deleteOwnedOrgObjects(c, type, org.orgId);
  },
};

export const kind = perOrgKind(migration);
