// phase_2_migration: one org's migration, its steps in the order
// docs/domain.md §6 tells them (the copy before the dark; the dark for the
// drain wait and the delta since the copy). Claiming the org (ready → started)
// and completing or failing it are the frame's (src/frame/README.md); this
// module is what happens in between, and how an org is put back when any of
// it fails.
import type { Context } from '../context.js';
import { deleteOwnedOrgObjects, replaceOrgObjects } from '../db/org-objects.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { cachedSettings } from '../db/settings.js';
import { OrgDataError, OwnershipLostError } from '../errors.js';
import { authzForDocs } from '../migration/authz.js';
import { compareRows, describeDiff, diffCount } from '../migration/compare.js';
import type { SqlObjects } from '../migration/verify.js';
import { lateWrites } from '../migration/late-writes.js';
import { planObjects, type ObjectPlan } from '../migration/plan-objects.js';
import { isOrgObject, orgDatabaseName, type CouchDoc } from '../stores/couch-docs.js';
import type { Change } from '../stores/couch.js';
import type { OrgMigration, OrgDelivery } from '../frame/org-job.js';
import { perOrgKind } from '../frame/per-org-kind.js';
import { flagsOf, fencedOrg } from '../frame/held-org.js';
import { classifyPgError } from '../stores/postgres.js';
import { PHASE_2_MIGRATION } from '../queue-names.js';

export const type = PHASE_2_MIGRATION;

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
export async function preflight(ctx: Context, org: OrgDelivery) {
  const why = await ctx.darklaunch.whyNotServedFrom(org.orgName, 'couchdb');
  if (why) throw new OrgDataError(`${why}; mover moves only orgs Chef serves from CouchDB, so it leaves this one as it is`);
}

const foreignRowsError = (n: number) =>
  new OrgDataError(
    `SQL already holds ${n} containers/groups rows for this org that mover did not write (made on SQL, or copied some other way); they are left as they are`,
  );

/** The copy this delivery holds: the documents it read, what it wrote, and the seq to take changes from. */
interface Copy {
  /** The org's containers and groups as CouchDB holds them, as of `seq`, by id. */
  docs: Map<string, CouchDoc>;
  /** Authz ids found for them so far. */
  authz: Map<string, string>;
  plan: ObjectPlan;
  /** The org database's update_seq the documents were read at: changes are taken from there. */
  seq: string;
  /** The org's rows as the last write answered SQL held them after it. */
  written: SqlObjects;
  /** Reads of the org's documents: the copy, then each catch-up that found containers or groups changed. */
  reads: number;
}
const copies = new WeakMap<OrgDelivery, Copy>();

/**
 * A seam for tests: runs right after each read of the org's documents (the
 * copy, each catch-up), so a test can land a write in CouchDB at exactly that
 * moment. Unset in the product.
 */
export const afterCopyRead: { hook?: (org: OrgDelivery) => Promise<void> } = {};

/** Reads of an org whose containers and groups keep changing after the drain (the copy and its catch-ups) before it fails. */
export const MAX_READS = 3;
/** Looks at the org's _changes check_writes makes (each either finds nothing, other documents' changes only, or takes a catch-up) before it gives up. */
const MAX_CHECKS = 10;

/**
 * Step 1, while the org is up: read its containers and groups (with the seq
 * they were read at) and write them into SQL in one statement, replacing any
 * rows an earlier delivery wrote. Chef does not see them until the switch.
 */
export async function migrate(ctx: Context, org: OrgDelivery) {
  const { docs, seq } = await ctx.couch.copyOrgObjects(org.orgId);
  await afterCopyRead.hook?.(org);
  const byId = new Map(docs.map((d) => [d._id, d]));
  const authz = new Map<string, string>();
  const copy: Copy = { docs: byId, authz, seq, reads: 1, ...(await writeCopy(ctx, org, byId, authz)) };
  copies.set(org, copy);
  org.log.info(
    { containers: copy.plan.containers.length, groups: copy.plan.groups.length, skipped: copy.plan.skipped.length, update_seq: seq },
    'org objects written',
  );
}

/**
 * Plans the documents into rows (authz ids looked up for the ones `authz` has
 * none for yet, and kept there) and writes them; each skipped document is
 * logged once per delivery.
 */
async function writeCopy(
  ctx: Context,
  org: OrgDelivery,
  docs: Map<string, CouchDoc>,
  authz: Map<string, string>,
  before?: ObjectPlan,
): Promise<Pick<Copy, 'plan' | 'written'>> {
  const unknown = [...docs.values()].filter((d) => !authz.has(d._id));
  if (unknown.length) for (const [id, a] of await authzForDocs(ctx, unknown, org.log)) authz.set(id, a);
  const plan = planObjects([...docs.values()], authz);
  const logged = new Set(before?.skipped.map((s) => s.docId));
  for (const s of plan.skipped.filter((x) => !logged.has(x.docId)))
    org.log.warn({ doc_id: s.docId, table: s.table, reason: s.reason, kept_doc_id: s.keptDocId }, 'document skipped');
  const unnamed = new Set(before?.noRequester);
  for (const id of plan.noRequester.filter((x) => !unnamed.has(x)))
    org.log.warn({ doc_id: id }, 'requester_id missing or malformed; last_updated_by set to zeros');
  let written;
  try {
    // Old rows go in the same statement: a job delivered twice leaves one set of rows, not two.
    // Fenced: a delivery that lost the org (it paused past its lease) has this refused by Postgres, and stops.
    written = await replaceOrgObjects(ctx.db, fencedOrg(org), plan);
  } catch (err) {
    if (err instanceof OwnershipLostError) throw err;
    throw classifyPgError(err, 'write containers and groups');
  }
  // Checked by the claim too (claimGuard); this is the statement's own guard against a row that appeared since.
  if (written.foreignRows) throw foreignRowsError(written.foreignRows);
  return { plan, written: written.sql };
}

/**
 * Steps 2 and 5: SQL holds exactly the planned rows for this org: same ids,
 * names and authz ids, nothing else. Checked on the rows the last write
 * answered with (read by that same call, after its inserts), so it costs no
 * round trip.
 */
export async function verify(_ctx: Context, org: OrgDelivery) {
  const copy = copies.get(org);
  if (!copy) throw new OrgDataError('verify: no copy in this delivery');
  const diff = compareRows(copy.plan, copy.written);
  if (diffCount(diff)) throw new OrgDataError(`verify: SQL differs from CouchDB (${describeDiff(diff)})`, { diff });
}

/** Step 3: the org goes dark (503) so nothing writes while its last changes move. */
export async function set503(_ctx: Context, org: OrgDelivery) {
  await flagsOf(org).setDown(true);
  // Dark from this write on (unless an earlier delivery took it dark: recallDark).
  org.darkSince ??= Date.now();
}

/**
 * Step 4: the drain wait (legacy sleep_time after going dark), so writes the
 * Chef API accepted just before 503 land before the catch-up. The job keeps
 * its slot while it waits: concurrency bounds the orgs dark at once.
 */
export async function drainWait(ctx: Context, org: OrgDelivery) {
  const ms = (await cachedSettings(ctx)).drainWaitMs;
  if (ms > 0) {
    org.log.debug({ wait_ms: ms }, 'drain wait');
    await sleep(ms);
  }
}

/**
 * Step 5, dark: no write lost at the switch. Everything that changed in the
 * org database since the copy's seq is read from _changes: while the org was
 * still up, writes went to CouchDB as usual, and writes the Chef API accepted
 * just before 503 land during the drain. If containers or groups are among
 * the changes, they are taken into the copy and its rows written again (one
 * statement), then verified; then it looks again, until nothing moved. Writes
 * that keep landing after that first catch-up are late: it waits a little
 * before each further look, up to MAX_READS reads in all; past that the org
 * fails and is restored, served from CouchDB, where those writes are.
 *
 * It is the last look before the switch, while the org is still dark and
 * still routed to CouchDB: no new request reaches a dark org, and the switch
 * (clear_503) is one write, so only that write is left unguarded.
 */
export async function checkWrites(ctx: Context, org: OrgDelivery) {
  const copy = copies.get(org);
  if (!copy) throw new OrgDataError('check_writes: no copy in this delivery');
  const dbName = orgDatabaseName(org.orgId);
  for (let check = 1; check <= MAX_CHECKS; check++) {
    const { changes, lastSeq } = await ctx.couch.changesSince(dbName, copy.seq);
    if (!changes.length) return;
    const changed = lateWrites(changes, new Map([...copy.docs.values()].map((d) => [d._id, d._rev])));
    if (!changed.length) {
      copy.seq = lastSeq; // other documents only (nodes, roles); look again from there
      continue;
    }
    if (copy.reads >= MAX_READS) {
      throw new OrgDataError(
        `containers/groups were still being written in CouchDB after ${copy.reads} reads of the org (${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ', ...' : ''}); the org stays on CouchDB`,
        { late: changed },
      );
    }
    if (copy.reads > 1) {
      org.log.warn({ late_doc_ids: changed.slice(0, 20), reads: copy.reads }, 'containers/groups still written after the drain; waiting, then taking them in');
      await sleep(Math.max((await cachedSettings(ctx)).drainWaitMs / 5, 250));
    }
    await catchUp(ctx, org, copy, changes, lastSeq);
    await verify(ctx, org);
  }
  throw new OrgDataError(`the org database kept changing through ${MAX_CHECKS} checks; the org stays on CouchDB`);
}

/** Takes the changes into the copy (documents added, changed, deleted, or no longer a container or group) and writes its rows again. */
async function catchUp(ctx: Context, org: OrgDelivery, copy: Copy, changes: Change[], lastSeq: string) {
  for (const c of changes) {
    if (!c.deleted && c.doc && isOrgObject(c.doc)) copy.docs.set(c.id, c.doc);
    else copy.docs.delete(c.id);
  }
  copy.seq = lastSeq;
  copy.reads++;
  await afterCopyRead.hook?.(org);
  Object.assign(copy, await writeCopy(ctx, org, copy.docs, copy.authz, copy.plan));
  org.log.info(
    { changes: changes.length, containers: copy.plan.containers.length, groups: copy.plan.groups.length, update_seq: lastSeq },
    'changes since the copy taken in',
  );
}

/**
 * Step 6, clear_503, the switch: routed to SQL and up again in one write (one HSET of
 * dl_org_<org>): Chef sees the org either dark on CouchDB or up on SQL,
 * and this is the only write check_writes cannot look after.
 */
export async function clear503(_ctx: Context, org: OrgDelivery) {
  await flagsOf(org).routeToSqlAndUp();
  org.darkUntil = Date.now();
}

/** The steps, in the per-org frame's terms (src/frame/org-job.ts). */
export const migration: OrgMigration = {
  type,
  preflight,
  claimGuard: { name: 'foreign_rows', refusal: foreignRowsError },
  steps: [
    // Recorded by the claim itself. The copy is made while Chef still serves the org from CouchDB: SQL rows are invisible to it until the switch.
    { name: 'migrate', run: migrate },
    { name: 'verify', run: verify },
    // From here on the org is dark: only what changed since the copy remains to move.
    { name: 'set_503', run: set503 },
    { name: 'drain_wait', run: drainWait },
    // No checkpoint: lost here, the org is restored just as from set_503 (a commit saved per org).
    { name: 'check_writes', run: checkWrites },
    // Past check_writes SQL holds everything: once the switch may have been written, the org is never moved back.
    // Named for the 503 it clears; the same write routes the org to SQL (docs/domain.md §6).
    { name: 'clear_503', run: clear503, checkpoint: true },
  ],
  committedFrom: 'clear_503',
  // Served from CouchDB and up again first; only then are the partial rows removed.
  restoreOutside: (_ctx, org) => flagsOf(org).routeBackToCouch(),
  restore: async (_ctx, org, c) => {
    await deleteOwnedOrgObjects(c, type, org.orgId);
  },
};

export const kind = perOrgKind(migration);
