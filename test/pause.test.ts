// A paused delivery never writes (docs/architecture.md, "Fencing"). For each
// write mover makes for an org, a delivery is held just before the write is
// sent (src/stores/pause-point.ts), as a process paused at that instant would
// be (a GC pause, a frozen VM): its lease lapses, another delivery or the
// reconciler finishes the org, and Chef acknowledges writes where it now
// serves the org from. Then the held write goes out, and the store itself
// refuses it: rows, flags, state, the run's counts and Chef's acknowledged
// writes are exactly as the one that finished the org left them.
import type { Job } from 'bullmq';
import nano from 'nano';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChefWriter } from '../dev/chef-writer.js';
import type { Context } from '../src/context.js';
import { getOrgState, readyOrgs } from '../src/db/org-states.js';
import { moveOrgs } from '../src/db/state-tracker.js';
import { setSetting } from '../src/db/settings.js';
import * as runs from '../src/db/runs.js';
import { fenceKey } from '../src/darklaunch.js';
import { hex32, type SeededOrg } from '../dev/estate.js';
import { OrgDataError } from '../src/errors.js';
import { addOrgJobs, orgJobId, type OrgJobData } from '../src/frame/kind.js';
import { runOrgJob } from '../src/frame/org-job.js';
import { afterCopyRead, migration, kind as migrationKind } from '../src/jobs/phase_2_migration.js';
import { kind as purgeKind } from '../src/jobs/phase_2_purge.js';
import { revert } from '../src/jobs/phase_2_revert.js';
import { startRun } from '../src/runs/manager.js';
import { pausePoint, type OrgWrite } from '../src/stores/pause-point.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { COUCH_KINDS, createHarness, expectedRows, REAL_COUCH, sqlRows, type Harness } from './support/harness.js';
import { claimHeld, lapse } from './support/held.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';
const R = 'phase_2_revert';

/**
 * Holds the `nth` write named `write` for the org (by id or name) until
 * released: `reached` resolves once the write is held. Writes after it, by
 * whoever, go through.
 */
function holdWrite(write: OrgWrite, org: SeededOrg, nth = 1) {
  let seen = 0;
  let arrived!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((r) => (arrived = r));
  const released = new Promise<void>((r) => (release = r));
  pausePoint.beforeWrite = async (w, o) => {
    if (w !== write || (o.orgId !== org.guid && o.orgName !== org.name) || ++seen !== nth) return;
    arrived();
    await released;
  };
  return { reached, release };
}

/** The paused process's lease lapsed: nobody renews it any more, and the next one may take it. */
const lapseLease = (h: Harness, org: SeededOrg) =>
  h.ctx.db.query(`UPDATE mover.org_progress SET lease_until = now() - interval '1 second' WHERE org_id = $1 AND lease_owner IS NOT NULL`, [org.guid]);

/** Everything the stores hold for one org and its run: what a refused write must leave as it was. */
async function storesOf(h: Harness, org: SeededOrg, runId: string) {
  const couch = nano(h.couchdb.url).use<Record<string, unknown>>(`chef_${org.guid}`);
  const docs = (await couch.list({ include_docs: false })).rows.map((r) => `${r.id}@${r.value.rev}`).sort();
  const state = await getOrgState(h.ctx.db, T, org.name);
  const run = (await h.ctx.db.query(`SELECT orgs_finished, orgs_failed, orgs_skipped, state FROM mover.migration_runs WHERE id = $1`, [runId])).rows[0];
  const { rows: results } = await h.ctx.db.query(`SELECT outcome, written_back, detail FROM mover.revert_results WHERE org_name = $1 ORDER BY at`, [org.name]);
  const { rows: purges } = await h.ctx.db.query(`SELECT outcome, docs FROM mover.purge_results WHERE org_name = $1`, [org.name]);
  return {
    rows: await sqlRows(h, org.guid),
    flags: await h.ctx.darklaunchRedis.hgetall(`dl_org_${org.name}`),
    state: { state: state?.state, step: state?.current_step, fail: state?.fail_location, requeues: state?.requeues },
    run,
    docs,
    results,
    purges,
  };
}

const kinds = COUCH_KINDS.filter(([, k]) => k !== 'couch1');
for (const [label, couch] of kinds) {
  const suite = couch === 'couchdb' && REAL_COUCH.kind === 'none' ? describe.skip : describe;
  suite(
    `a paused delivery's writes are refused by the stores, on ${label}${couch === 'couchdb' && REAL_COUCH.kind === 'none' ? ` (skipped: ${REAL_COUCH.why})` : ''}`,
    () => {
      let h: Harness;
      let paused: Context;
      let chef: ChefWriter;
      let batch = 0;

      beforeAll(async () => {
        h = await createHarness(`pause-${couch}`, { jobLockMs: 6000 }, { couch });
        // The paused delivery runs in a process of its own (its own pool and lease keeper), as on another worker.
        paused = h.newContext();
        await setSetting(h.ctx.db, 'drainWaitMs', 50);
        chef = new ChefWriter({ redis: h.ctx.darklaunchRedis, db: h.ctx.db, couchUrl: h.couchdb.url, accountDb: h.couchdb.accountDb }, 5000);
      });
      afterAll(() => h?.close());
      afterEach(async () => {
        pausePoint.beforeWrite = undefined;
        afterCopyRead.hook = undefined;
        await h.ctx.queues[T].obliterate({ force: true });
        await h.ctx.queues[R].obliterate({ force: true });
        expect(await chef.lost()).toEqual([]);
        // A reverted org is ready again: held, so the next test's migration run (all ready orgs) takes only its own.
        const ready = await readyOrgs(h.ctx.db, T, null);
        await moveOrgs(
          h.ctx.db,
          T,
          ready.map((o) => o.name),
          'ready',
          'holding',
        );
      });

      async function readyOrg(): Promise<SeededOrg> {
        const [org] = await seedReady(h, [{ name: `p${++batch}-${couch}` }]);
        return org;
      }

      const jobOf = async (type: string, runId: string, org: SeededOrg) => (await h.ctx.queues[type].getJob(orgJobId(runId, org.guid))) as Job<OrgJobData>;

      /**
       * A migration's delivery held before `write` (its nth); its lease lapses;
       * a second delivery of the same job finishes the org; Chef writes to it on
       * SQL; the held write goes out. Returns the held delivery's outcome and
       * the stores as the second left them.
       */
      async function migrationHeldAt(write: OrgWrite, nth = 1, setup?: (org: SeededOrg) => void, whileHeld?: () => Promise<void>) {
        const org = await readyOrg();
        const { run } = await startRun(h.ctx, T, { count: 'all', orgs: [org.name], concurrency: 1 });
        const job = await jobOf(T, run.id, org);
        setup?.(org);
        const held = holdWrite(write, org, nth);
        const first = runOrgJob(migration, paused, job, undefined);
        await held.reached;
        afterCopyRead.hook = undefined;
        await whileHeld?.();
        await lapseLease(h, org);
        expect(await runOrgJob(migration, h.ctx, job, undefined)).toEqual({ outcome: 'completed' });
        expect(await chef.create(org)).toMatchObject({ store: 'sql' });
        const after = await storesOf(h, org, run.id);
        held.release();
        return { org, run, outcome: await first, before: after, after: await storesOf(h, org, run.id) };
      }

      const migrated = (org: SeededOrg, s: Awaited<ReturnType<typeof storesOf>>) => {
        expect(s.state).toEqual({ state: 'completed', step: null, fail: null, requeues: 0 });
        expect(s.flags).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
        expect(s.rows.groups).toEqual(expectedRows(org).groups);
        expect(s.rows.containers).toHaveLength(expectedRows(org).containers.length + 1);
        expect(s.run).toEqual({ orgs_finished: 1, orgs_failed: 0, orgs_skipped: 0, state: 'ready' });
      };

      it.each([
        ['the copy', 'copy' as const, 1],
        ['the 503', 'flags' as const, 1],
        ['the clear_503 checkpoint', 'checkpoint' as const, 1],
        ['the switch to SQL', 'flags' as const, 2],
        ['the completion', 'complete' as const, 1],
      ])('migration: held before %s, it stands aside and changes nothing', async (_what, write, nth) => {
        const { org, outcome, before, after } = await migrationHeldAt(write, nth);
        expect(outcome.outcome).toBe('skipped');
        expect(after).toEqual(before);
        migrated(org, after);
      });

      it("migration: held before its catch-up's write in check_writes (a container changed after its copy), it changes nothing", async () => {
        const { org, outcome, before, after } = await migrationHeldAt('copy', 2, (org) => {
          // Right after the held delivery's copy read, Chef changes a container on CouchDB: its check_writes must write again.
          let once = true;
          afterCopyRead.hook = async () => {
            if (!once) return;
            once = false;
            const db = nano(h.couchdb.url).use<Record<string, unknown>>(`chef_${org.guid}`);
            const doc = await db.get(org.expected[0].id);
            await db.insert({ ...doc, containername: 'renamed-late' });
          };
        });
        expect(outcome.outcome).toBe('skipped');
        expect(after).toEqual(before);
        migrated(org, after);
        expect(after.rows.containers).toContainEqual(expect.objectContaining({ id: org.expected[0].id, name: 'renamed-late' }));
      });

      it('migration: a failing delivery held before its restore stands aside; the org another delivery completed keeps its SQL routing', async () => {
        const { org, outcome, before, after } = await migrationHeldAt('hold', 1, () => {
          // The held delivery's copy fails on its data, once: it goes to put the org back.
          let once = true;
          afterCopyRead.hook = async () => {
            if (!once) return;
            once = false;
            throw new OrgDataError('a document this delivery could not read');
          };
        });
        expect(outcome.outcome).toBe('skipped');
        expect(after).toEqual(before);
        migrated(org, after);
      });

      it('migration: a delivery held inside its restore (holding the org) keeps the next one waiting; the org ends restored, never half done', async () => {
        const org = await readyOrg();
        const { run } = await startRun(h.ctx, T, { count: 'all', orgs: [org.name], concurrency: 1 });
        const job = await jobOf(T, run.id, org);
        afterCopyRead.hook = async () => {
          afterCopyRead.hook = undefined;
          throw new OrgDataError('a document this delivery could not read');
        };
        // Its restore's darklaunch write, inside the transaction that holds the org's row.
        const held = holdWrite('flags', org, 1);
        const first = runOrgJob(migration, paused, job, undefined);
        await held.reached;
        const second = runOrgJob(migration, h.ctx, job, undefined);
        // The second cannot even ask for the lease while the first holds the org's row (a lease take locks it first): it waits, it does not act.
        await new Promise((r) => setTimeout(r, 700));
        expect((await getOrgState(h.ctx.db, T, org.name))?.state).toBe('started');
        held.release();
        expect(await first).toMatchObject({ outcome: 'failed', step: 'migrate' });
        expect((await second).outcome).toBe('skipped');
        const s = await storesOf(h, org, run.id);
        expect(s.state).toMatchObject({ state: 'failed', fail: 'migrate' });
        expect(s.flags).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
        expect(s.rows).toEqual({ containers: [], groups: [] });
        expect(await chef.create(org)).toMatchObject({ store: 'couchdb' });
      });

      it('migration: a delivery held inside its restore whose session Postgres ended (a partition) has its late darklaunch write refused by Redis', async () => {
        const { org, outcome, before, after } = await migrationHeldAt(
          'flags',
          1,
          () => {
            afterCopyRead.hook = async () => {
              afterCopyRead.hook = undefined;
              throw new OrgDataError('a document this delivery could not read');
            };
          },
          async () => {
            // The server ends the held delivery's session (as on a partition, or idle_in_transaction_session_timeout): its hold on the org goes with it.
            const { rows } = await h.ctx.db.query(
              `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`,
            );
            expect(rows).toEqual([{ ended: true }]);
          },
        );
        expect(outcome.outcome).toBe('skipped');
        expect(after).toEqual(before);
        migrated(org, after);
      });

      it('migration: a delivery held before failing an org on its preflight changes nothing once another delivery migrated it', async () => {
        const org = await readyOrg();
        const { run } = await startRun(h.ctx, T, { count: 'all', orgs: [org.name], concurrency: 1 });
        const job = await jobOf(T, run.id, org);
        // The held delivery read Chef's routing while an operator had the org on SQL by hand; then it was put back.
        await h.ctx.darklaunchRedis.hset(`dl_org_${org.name}`, { couchdb_containers: 'false' });
        const held = holdWrite('fail_unstarted', org);
        const first = runOrgJob(migration, paused, job, undefined);
        await held.reached;
        await h.ctx.darklaunchRedis.hset(`dl_org_${org.name}`, { couchdb_containers: 'true' });
        await lapseLease(h, org);
        expect(await runOrgJob(migration, h.ctx, job, undefined)).toEqual({ outcome: 'completed' });
        expect(await chef.create(org)).toMatchObject({ store: 'sql' });
        const before = await storesOf(h, org, run.id);
        held.release();
        expect((await first).outcome).toBe('skipped');
        const after = await storesOf(h, org, run.id);
        expect(after).toEqual(before);
        migrated(org, after);
      });

      it('reconciler: a pass held before it puts back an org whose job was lost changes nothing once a new delivery finished it', async () => {
        const org = await readyOrg();
        const { run } = await startRun(h.ctx, T, { count: 'all', orgs: [org.name], concurrency: 1 });
        // A delivery claimed it and died at migrate; its job is gone.
        const { key } = await claimHeld(h.ctx.db, { type: T, orgId: org.guid, runId: run.id }, { firstStep: 'migrate' });
        await lapse(h.ctx.db, key);
        await (await jobOf(T, run.id, org)).remove();
        const held = holdWrite('hold', org);
        const pass = migrationKind.reconcile!(paused, async () => 'missing');
        await held.reached;
        await lapseLease(h, org);
        // Its job comes back (queued again by another pass, or by hand): a delivery resumes and completes the org.
        await addOrgJobs(h.ctx.queues[T], run.id, [{ org_name: org.name, org_id: org.guid }]);
        expect(await runOrgJob(migration, h.ctx, await jobOf(T, run.id, org), undefined)).toEqual({ outcome: 'completed' });
        expect(await chef.create(org)).toMatchObject({ store: 'sql' });
        const before = await storesOf(h, org, run.id);
        held.release();
        expect(await pass).toEqual([]);
        const after = await storesOf(h, org, run.id);
        expect(after).toEqual(before);
        migrated(org, after);
      });

      /** A migrated org with a group made on SQL since, and a write_back revert run of it. */
      async function revertable() {
        const org = await readyOrg();
        const { run: m } = await startRun(h.ctx, T, { count: 'all', orgs: [org.name], concurrency: 1 });
        expect(await runOrgJob(migration, h.ctx, await jobOf(T, m.id, org), undefined)).toEqual({ outcome: 'completed' });
        const made = { id: hex32(), authz: hex32() };
        await h.ctx.db.query(
          `INSERT INTO "groups" (id, org_id, authz_id, name, last_updated_by, created_at, updated_at) VALUES ($1, $2, $3, 'made-on-sql', $4, now(), now())`,
          [made.id, org.guid, made.authz, hex32()],
        );
        const { run } = await startRun(h.ctx, R, { count: 'all', orgs: [org.name], concurrency: 1, params: { write_back: true } });
        return { org, run, made, job: await jobOf(R, run.id, org) };
      }

      it.each([
        ['its write-back to CouchDB', 'write_back' as const, 1],
        ['the switch back to CouchDB', 'flags' as const, 2],
        ['its completion (its SQL rows deleted with it)', 'complete' as const, 1],
      ])('revert: held before %s, it changes nothing once another delivery reverted the org', async (_what, write, nth) => {
        const { org, run, made, job } = await revertable();
        const held = holdWrite(write, org, nth);
        const first = runOrgJob(revert, paused, job, undefined);
        await held.reached;
        await lapseLease(h, org);
        expect(await runOrgJob(revert, h.ctx, job, undefined)).toEqual({ outcome: 'completed' });
        // Chef, now on CouchDB, renames the group the revert wrote back and makes a container.
        const db = nano(h.couchdb.url).use<Record<string, unknown>>(`chef_${org.guid}`);
        await db.insert({ ...(await db.get(made.id)), groupname: 'renamed-on-couchdb' });
        expect(await chef.create(org)).toMatchObject({ store: 'couchdb' });
        const before = await storesOf(h, org, run.id);
        held.release();
        expect((await first).outcome).toBe('skipped');
        const after = await storesOf(h, org, run.id);
        expect(after).toEqual(before);
        expect(after.state).toMatchObject({ state: 'ready' });
        expect(after.flags).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
        expect(after.rows).toEqual({ containers: [], groups: [] });
        // Written back once, by whichever delivery got there (a delivery that only finishes a committed revert writes nothing back).
        expect(after.results).toEqual([{ outcome: 'reverted', written_back: write === 'write_back' ? 2 : 0, detail: null }]);
        expect((await db.get(made.id)).groupname).toBe('renamed-on-couchdb');
      });

      it('purge: a pass held after its last check, before deleting, has its deletes refused by CouchDB once another pass purged and a revert made the org live again', async () => {
        const org = await readyOrg();
        const { run: m } = await startRun(h.ctx, T, { count: 'all', orgs: [org.name], concurrency: 1 });
        expect(await runOrgJob(migration, h.ctx, await jobOf(T, m.id, org), undefined)).toEqual({ outcome: 'completed' });
        const purgeRun = (await runs.createRun(h.ctx.db, 'phase_2_purge', null, 1, 1))!.id;
        await runs.doneEnqueueing(h.ctx.db, purgeRun);
        const data = { runId: purgeRun, batch: 1, orgs: [{ name: org.name, guid: org.guid }] };
        const held = holdWrite('purge_delete', org);
        const first = purgeKind.process(paused, { data } as Job, undefined);
        await held.reached;
        await lapseLease(h, org);
        // Another pass of the batch: it resumes the org and purges it.
        expect(await purgeKind.process(h.ctx, { data } as Job, undefined)).toMatchObject({ purged: 1 });
        expect((await getOrgState(h.ctx.db, T, org.name))?.state).toBe('purge_successful');
        // The operator brings the org's documents back to CouchDB and serves it from there (a revert by hand).
        const db = nano(h.couchdb.url).use<Record<string, unknown>>(`chef_${org.guid}`);
        await db.bulk({
          docs: org.expected.map((e) => ({
            _id: e.id,
            'couchrest-type': e.table === 'containers' ? TYPES.container : TYPES.group,
            [e.table === 'containers' ? 'containername' : 'groupname']: e.name,
          })),
        });
        await h.ctx.darklaunchRedis.hset(`dl_org_${org.name}`, { couchdb_containers: 'true', couchdb_groups: 'true' });
        expect(await chef.create(org)).toMatchObject({ store: 'couchdb' });
        const before = await storesOf(h, org, m.id);
        held.release();
        await first;
        const after = await storesOf(h, org, m.id);
        expect(after).toEqual(before);
        expect(after.docs).toHaveLength(org.expected.length + 1);
        expect(after.purges).toEqual([{ outcome: 'purged', docs: org.expected.length }]);
      });
    },
  );
}

describe('a prep pin that lands late', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('pause-pin');
  });
  afterAll(() => h?.close());

  it('sets only routing fields an org lacks: an org routed to SQL since, or set by hand, keeps its flags', async () => {
    await h.ctx.darklaunchRedis.hset('dl_org_pin-migrated', { couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    await h.ctx.darklaunchRedis.hset('dl_org_pin-half', { couchdb_groups: 'false' });
    expect(await h.ctx.darklaunch.pinOrgsToCouch(['pin-new', 'pin-migrated', 'pin-half'])).toEqual(['pin-migrated', 'pin-half']);
    expect(await h.ctx.darklaunchRedis.hgetall('dl_org_pin-new')).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true' });
    expect(await h.ctx.darklaunchRedis.hgetall('dl_org_pin-migrated')).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    expect(await h.ctx.darklaunchRedis.hgetall('dl_org_pin-half')).toEqual({ couchdb_containers: 'true', couchdb_groups: 'false' });
  });
});

describe('the darklaunch fence', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('pause-fence');
  });
  afterAll(() => h?.close());

  it('refuses a write under an older epoch, or with no fence raised, and never raises below a later holder', async () => {
    const older = h.ctx.darklaunch.fenced('fence-org', 10);
    await older.setDown(true);
    const later = h.ctx.darklaunch.fenced('fence-org', 11);
    await later.routeToSqlAndUp();
    await expect(older.routeBackToCouch()).rejects.toMatchObject({ name: 'OwnershipLostError' });
    await expect(h.ctx.darklaunch.raiseFence('fence-org', 10)).rejects.toMatchObject({ name: 'OwnershipLostError' });
    expect(await h.ctx.darklaunchRedis.hgetall('dl_org_fence-org')).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    // The fence is a key of its own beside the org's hash, which keeps only Chef's fields; it lasts an hour.
    expect(await h.ctx.darklaunchRedis.get('mover_fence:{dl_org_fence-org}')).toBe('11');
    expect(await h.ctx.darklaunchRedis.ttl('mover_fence:{dl_org_fence-org}')).toBeGreaterThan(3500);
    // Gone (expired, or lost in a failover): no write goes through.
    await h.ctx.darklaunchRedis.del('mover_fence:{dl_org_fence-org}');
    await expect(later.setDown(true)).rejects.toMatchObject({ name: 'OwnershipLostError' });
    expect((await h.ctx.darklaunchRedis.hgetall('dl_org_fence-org'))['503_mode']).toBe('false');
  });

  it('keeps the fence in the hash slot of the org hash it guards (a Redis Cluster runs one script on both)', async () => {
    // Redis hashes a key's first {tag} when it has a non-empty one, else the whole key (as the cluster spec states it).
    const hashed = (k: string) => {
      const open = k.indexOf('{');
      const close = open >= 0 ? k.indexOf('}', open + 1) : -1;
      return close > open + 1 ? k.slice(open + 1, close) : k;
    };
    for (const org of ['acme', 'a{b}c', 'q{r}s{t}']) expect(hashed(fenceKey(org)), org).toBe(hashed(`dl_org_${org}`));
    expect(fenceKey('acme')).toBe('mover_fence:{dl_org_acme}');
  });
});
