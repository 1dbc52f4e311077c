// Whole runs through the fleet: halt, fatal stop when CouchDB goes away,
// concurrency and pacing across two worker processes, duplicate delivery, reconciler.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from 'bullmq';
import { migration as phase2 } from '../src/jobs/phase_2_migration.js';
import { orgJobId, type OrgJobData } from '../src/frame/kind.js';
import { runOrgJob } from '../src/frame/org-job.js';
import { restoreAndRecordFailure } from '../src/frame/org-restore.js';
import { startRun } from '../src/runs/manager.js';
import * as tracker from '../src/db/state-tracker.js';
import { getOrgState } from '../src/db/org-states.js';
import { latestResult } from '../src/db/reverts.js';
import type { Fleet } from '../src/workers/fleet.js';
import type { SeededOrg } from '../dev/estate.js';
import { createHarness, expectedRows, sqlRows, waitFor, waitForRunEnd, type Harness } from './support/harness.js';
import { claimHeld, heldRef, lapse } from './support/held.js';
import { seedReady } from './support/seed-ready.js';
import { OwnershipLostError } from '../src/errors.js';

const T = 'phase_2_migration';
const R = 'phase_2_revert';
let h: Harness;
let fleets: Fleet[] = [];
let batch = 0;

beforeAll(async () => {
  h = await createHarness('fleet');
});
afterAll(() => h?.close());
afterEach(async () => {
  await Promise.all(fleets.map((f) => f.close(5000)));
  fleets = [];
  await h.api('PUT', '/settings/sleep-time', { ms: 0 });
});

/** Seeds n fresh orgs, refreshes the snapshot, captures and readies them (workers are started per test below: seedReady needs none). */
async function readyOrgs(n: number, specs: Partial<import('../dev/estate.js').OrgSpec> = {}): Promise<SeededOrg[]> {
  batch++;
  return seedReady(
    h,
    Array.from({ length: n }, (_, i) => ({ name: `b${batch}-org-${String(i).padStart(3, '0')}`, ...specs })),
  );
}

const stateOf = async (name: string) => (await getOrgState(h.ctx.db, T, name))!;
const flags = (name: string) => h.ctx.darklaunchRedis.hgetall(`dl_org_${name}`);

/** Asserts the end state of every store for each org, whatever it ended as. */
/** What a worker killed mid-migrate (or Redis losing its last writes) leaves behind: started at migrate, dark, partial rows, job gone. */
async function leaveStartedWithoutJob(org: SeededOrg, runId: string) {
  const { claim, key } = await claimHeld(h.ctx.db, { type: T, orgId: org.guid, runId });
  expect(claim).toEqual({ claimed: true });
  await tracker.setStep(h.ctx.db, key, 'migrate');
  await lapse(h.ctx.db, key);
  await h.ctx.darklaunchRedis.hset(`dl_org_${org.name}`, '503_mode', 'true');
  const e = org.expected[0];
  await h.ctx.db.query(`INSERT INTO containers VALUES ($1, $2, $3, $4, $5, now(), now())`, [e.id, org.guid, e.authzId, e.name, '0'.repeat(32)]);
  await h.ctx.db.query(`UPDATE mover.org_progress SET rows_in_sql = true WHERE org_id = $1`, [org.guid]);
  await (await h.ctx.queues[T].getJob(orgJobId(runId, org.guid)))!.remove();
}

async function assertNoOrgDarkOrHalfDone(orgs: SeededOrg[]) {
  for (const org of orgs) {
    const s = await stateOf(org.name);
    const f = await flags(org.name);
    expect(s.state, org.name).not.toBe('started');
    expect(f['503_mode'] ?? 'false', org.name).toBe('false');
    const rows = await sqlRows(h, org.guid);
    if (s.state === 'completed') {
      expect(rows, org.name).toEqual(expectedRows(org));
      expect(f).toMatchObject({ couchdb_containers: 'false', couchdb_groups: 'false' });
    } else {
      expect(rows, org.name).toEqual({ containers: [], groups: [] });
      if (s.state === 'failed') expect(f).toMatchObject({ couchdb_containers: 'true', couchdb_groups: 'true' });
    }
  }
}

describe('fleet', () => {
  it('caps concurrency fleet-wide across two worker processes, and takes a change mid-run', async () => {
    const orgs = await readyOrgs(24, { otherDocs: 40 });
    fleets.push(h.startWorkers({ concurrency: 4 }), h.startWorkers({ concurrency: 4 }));
    await h.api('PUT', '/settings/drain-wait', { ms: 0, acknowledge_risk: true });
    expect((await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 })).status).toBe(202);
    await waitFor('6 orgs done', async () => (await h.api('GET', `/migrations/${T}/status`)).body.orgs_completed >= 6);
    const changedAt = Date.now();
    const put = await h.api('PUT', `/migrations/${T}/concurrency`, { concurrency: 4 });
    expect(put.status).toBe(200);
    const status = await waitForRunEnd(h);
    expect(status).toMatchObject({ orgs_completed: 24, objects_failed: 0, concurrency: 4, fatal_stop: false });
    expect(await h.ctx.queueRedis.hget(`${h.config.queuePrefix}:${T}:meta`, 'concurrency')).toBe('4');
    // Before the change, no two orgs were ever in flight at once, across both processes.
    const rows = await Promise.all(orgs.map((o) => stateOf(o.name)));
    const before = rows.filter((r) => r.migration_end!.getTime() < changedAt).sort((a, b) => a.migration_start!.getTime() - b.migration_start!.getTime());
    expect(before.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < before.length; i++) expect(before[i].migration_start!.getTime()).toBeGreaterThanOrEqual(before[i - 1].migration_end!.getTime());
    await assertNoOrgDarkOrHalfDone(orgs);
  });

  it('paces org starts with the queue rate limiter (sleep time)', async () => {
    const orgs = await readyOrgs(6);
    fleets.push(h.startWorkers({ concurrency: 4 }));
    expect((await h.api('PUT', '/settings/sleep-time', { ms: 400 })).status).toBe(200);
    const { run_id: runId } = (await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 2 })).body;
    expect((await waitForRunEnd(h)).orgs_completed).toBe(6);
    // When each org's job was taken from the queue (the limiter counts takes, not claims).
    const jobs = await Promise.all(orgs.map((o) => h.ctx.queues[T].getJob(orgJobId(runId, o.guid))));
    const taken = jobs.map((j) => j!.processedOn!).sort((a, b) => a - b);
    // The limiter's promise: at most 2 takes per 400 ms, spread as 1 per window
    // of 200 ms (src/queues.ts), each window opening at its first take. Takes i
    // and i + 4 are three windows apart at least, so more than 400 ms apart,
    // however the machine is loaded; 10 ms
    // covers the limiter's key expiring by Redis' clock while the takes carry the
    // worker's (rounded to the millisecond).
    for (let i = 4; i < taken.length; i++) expect(taken[i] - taken[i - 4]).toBeGreaterThanOrEqual(390);
    // Six orgs at two per window need three windows: the last take is at least two windows after the first.
    expect(taken[5] - taken[0]).toBeGreaterThanOrEqual(790);
    await assertNoOrgDarkOrHalfDone(orgs);
  });

  it('keeps an org in its worker slot through the drain wait, so concurrency bounds the orgs dark at once', async () => {
    const orgs = await readyOrgs(4);
    fleets.push(h.startWorkers({ concurrency: 4 }), h.startWorkers({ concurrency: 4 }));
    await h.ctx.db.query(`INSERT INTO mover.settings (key, value) VALUES ('drainWaitMs', '400') ON CONFLICT (key) DO UPDATE SET value = '400'`);
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    await waitForRunEnd(h);
    await h.ctx.db.query(`UPDATE mover.settings SET value = '0' WHERE key = 'drainWaitMs'`);
    const rows = (await Promise.all(orgs.map((o) => stateOf(o.name)))).sort((a, b) => a.migration_start!.getTime() - b.migration_start!.getTime());
    // Each org waited its 400 ms in 503 ...
    for (const r of rows) expect(r.migration_end!.getTime() - r.migration_start!.getTime()).toBeGreaterThanOrEqual(390);
    // ... and with one place fleet-wide, the next org started only after the one before had finished.
    for (let i = 1; i < rows.length; i++) expect(rows[i].migration_start!.getTime()).toBeGreaterThanOrEqual(rows[i - 1].migration_end!.getTime());
    await assertNoOrgDarkOrHalfDone(orgs);
  });

  it('halts fleet-wide: running orgs finish, no new org starts, the rest stay ready', async () => {
    const orgs = await readyOrgs(12);
    fleets.push(h.startWorkers({ concurrency: 4 }), h.startWorkers({ concurrency: 4 }));
    await h.api('PUT', '/settings/sleep-time', { ms: 300 });
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    await waitFor('2 orgs done', async () => (await h.api('GET', `/migrations/${T}/status`)).body.orgs_completed >= 2);
    const halt = await h.api('POST', `/migrations/${T}/halt`);
    expect(halt.status).toBe(200);
    const startedAtHalt = (await Promise.all(orgs.map((o) => stateOf(o.name)))).filter((r) => r.state !== 'ready').length;
    const status = await waitForRunEnd(h);
    expect(status.fatal_stop).toBe(false);
    const end = await Promise.all(orgs.map((o) => stateOf(o.name)));
    expect(end.filter((r) => r.state !== 'ready').length).toBe(startedAtHalt);
    expect(end.filter((r) => r.state === 'ready').length).toBeGreaterThanOrEqual(12 - startedAtHalt);
    expect(await h.ctx.queues[T].getJobCountByTypes('waiting', 'delayed', 'active')).toBe(0);
    await assertNoOrgDarkOrHalfDone(orgs);
    // The halted orgs are still ready, so a new run takes them.
    await h.api('PUT', '/settings/sleep-time', { ms: 0 });
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 4 });
    expect((await waitForRunEnd(h)).orgs_completed).toBe(12 - startedAtHalt);
    await assertNoOrgDarkOrHalfDone(orgs);
  });

  it('treats a job delivered twice (even at once) as one: one set of rows, completed, counted once', async () => {
    const [org] = await readyOrgs(1);
    const { run } = await startRun(h.ctx, T, { count: 'all', concurrency: 1 });
    const job = (await h.ctx.queues[T].getJob(orgJobId(run.id, org.guid))) as Job<OrgJobData>;
    const results = await Promise.all([runOrgJob(phase2, h.ctx, job, undefined), runOrgJob(phase2, h.ctx, job, undefined)]);
    const again = await runOrgJob(phase2, h.ctx, job, undefined);
    expect(results.map((r) => r.outcome).sort()).toEqual(['completed', 'skipped']);
    expect(again.outcome).toBe('skipped');
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
    expect((await stateOf(org.name)).state).toBe('completed');
    const { rows } = await h.ctx.db.query('SELECT orgs_finished, orgs_failed, state FROM mover.migration_runs WHERE id = $1', [run.id]);
    expect(rows[0]).toEqual({ orgs_finished: 1, orgs_failed: 0, state: 'ready' });
    await h.ctx.queues[T].obliterate({ force: true });
    await assertNoOrgDarkOrHalfDone([org]);
  });

  it('completes an org delivered again after its copy ran (rows left by the earlier delivery are replaced, not a duplicate key)', async () => {
    const [org] = await readyOrgs(1);
    const { run } = await startRun(h.ctx, T, { count: 'all', concurrency: 1 });
    const job = (await h.ctx.queues[T].getJob(orgJobId(run.id, org.guid))) as Job<OrgJobData>;
    // The first delivery: claimed, dark, copied ... then its worker is killed (nothing more runs).
    const { ref, claim } = await heldRef(h.ctx, { type: T, runId: run.id, orgName: org.name, orgId: org.guid }, { firstStep: 'set_503' });
    expect(claim).toEqual({ claimed: true });
    for (const step of phase2.steps.slice(0, 3)) await step.run(h.ctx, ref);
    await ref.lease!.release();
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
    // The second delivery of the same job resumes the started org from its first step.
    expect(await runOrgJob(phase2, h.ctx, job, undefined)).toEqual({ outcome: 'completed' });
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
    expect((await stateOf(org.name)).state).toBe('completed');
    expect(await flags(org.name)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    const { rows } = await h.ctx.db.query('SELECT orgs_finished, orgs_failed, state FROM mover.migration_runs WHERE id = $1', [run.id]);
    expect(rows[0]).toEqual({ orgs_finished: 1, orgs_failed: 0, state: 'ready' });
    await h.ctx.queues[T].obliterate({ force: true });
  });

  it('never restores an org that completed while the reconciler looked (it keeps its SQL routing)', async () => {
    const [org] = await readyOrgs(1);
    fleets.push(h.startWorkers());
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    const status = await waitForRunEnd(h);
    expect((await stateOf(org.name)).state).toBe('completed');
    // A reconciler pass that looked while it was in flight, holding it at the generation it saw then.
    // waitForRunEnd waits for a run, so it has an id.
    const { ref } = await heldRef(h.ctx, { type: T, runId: status.run_id!, orgName: org.name, orgId: org.guid }, { claim: false });
    ref.generation = 0;
    await expect(restoreAndRecordFailure(phase2, h.ctx, ref, 'migrate', 'stale look', 'infrastructure')).rejects.toBeInstanceOf(OwnershipLostError);
    await ref.lease!.release();
    expect(await flags(org.name)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
  });

  /** A migrated org, and a revert run of it whose delivery was lost after claiming it (completed → started at `step`), its job gone. */
  async function revertLostAt(step: string) {
    const [org] = await readyOrgs(1);
    const migrating = h.startWorkers();
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    await waitForRunEnd(h);
    await migrating.close(5000);
    const { run } = await startRun(h.ctx, R, { count: 'all', orgs: [org.name], concurrency: 1 });
    const { claim, key } = await claimHeld(h.ctx.db, { type: T, orgId: org.guid, runId: run.id }, { firstStep: 'set_503', from: 'completed' });
    expect(claim).toEqual({ claimed: true });
    await tracker.setStep(h.ctx.db, key, step);
    await lapse(h.ctx.db, key);
    await (await h.ctx.queues[R].getJob(orgJobId(run.id, org.guid)))!.remove();
    return { org, run };
  }

  it('puts back a completed org whose revert job was lost mid-way once its run stopped: routed to SQL and up, the revert failed', async () => {
    const { org, run } = await revertLostAt('drain_wait');
    await h.ctx.darklaunchRedis.hset(`dl_org_${org.name}`, '503_mode', 'true');
    await h.api('POST', `/migrations/${R}/halt`);
    fleets.push(h.startWorkers());
    await waitFor('reconciler', async () => (await stateOf(org.name)).state === 'completed');
    expect(await stateOf(org.name)).toMatchObject({ state: 'completed', current_step: null, run_id: run.id });
    expect(await flags(org.name)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
    expect(await latestResult(h.ctx.db, org.name)).toMatchObject({ outcome: 'failed', run_id: run.id });
  });

  it('puts back and queues again a revert whose job was lost mid-way while its run works; the revert then finishes', async () => {
    const { org, run } = await revertLostAt('compare');
    await h.ctx.darklaunchRedis.hset(`dl_org_${org.name}`, '503_mode', 'true');
    fleets.push(h.startWorkers());
    const end = await waitForRunEnd(h, R);
    expect(end).toMatchObject({ run_id: run.id, orgs_completed: 1, objects_failed: 0 });
    expect((await stateOf(org.name)).state).toBe('ready');
    expect(await flags(org.name)).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
    expect(await sqlRows(h, org.guid)).toEqual({ containers: [], groups: [] });
    expect(await latestResult(h.ctx.db, org.name)).toMatchObject({ outcome: 'reverted' });
  });

  it('finishes, never moves back, a revert whose job was lost after its switch back (at route_to_couchdb): its SQL rows go, it is ready', async () => {
    const { org, run } = await revertLostAt('route_to_couchdb');
    // The switch back was written: served from CouchDB and up, its SQL rows still there.
    await h.ctx.darklaunchRedis.hset(`dl_org_${org.name}`, { couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
    fleets.push(h.startWorkers());
    await waitFor('reconciler', async () => (await stateOf(org.name)).state === 'ready');
    expect(await flags(org.name)).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
    expect(await sqlRows(h, org.guid)).toEqual({ containers: [], groups: [] });
    expect(await latestResult(h.ctx.db, org.name)).toMatchObject({ outcome: 'reverted', run_id: run.id });
    expect(await waitForRunEnd(h, R)).toMatchObject({ orgs_completed: 1 });
  });

  it('finishes, never restores, an org whose job was lost once it was committed to SQL (at clear_503): writes made on SQL stay', async () => {
    const [org] = await readyOrgs(1);
    const { run } = await startRun(h.ctx, T, { count: 'all', concurrency: 1 });
    // What a worker killed just after 503 came down leaves: started at clear_503, routed to SQL, up, its rows in SQL ...
    const { claim, key } = await claimHeld(h.ctx.db, { type: T, orgId: org.guid, runId: run.id });
    expect(claim).toEqual({ claimed: true });
    await tracker.setStep(h.ctx.db, key, 'clear_503');
    await lapse(h.ctx.db, key);
    for (const e of org.expected) {
      await h.ctx.db.query(`INSERT INTO "${e.table}" VALUES ($1, $2, $3, $4, $5, now(), now())`, [e.id, org.guid, e.authzId, e.name, '0'.repeat(32)]);
    }
    await h.ctx.db.query(`UPDATE mover.org_progress SET rows_in_sql = true WHERE org_id = $1`, [org.guid]);
    await h.ctx.darklaunchRedis.hset(`dl_org_${org.name}`, { couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    // ... and a group the Chef API made on SQL since.
    const made = { id: 'f'.repeat(32), authz: 'e'.repeat(32) };
    await h.ctx.db.query(`INSERT INTO "groups" VALUES ($1, $2, $3, 'made-since', $4, now(), now())`, [made.id, org.guid, made.authz, '0'.repeat(32)]);
    await (await h.ctx.queues[T].getJob(orgJobId(run.id, org.guid)))!.remove();
    fleets.push(h.startWorkers());
    await waitFor('reconciler', async () => (await stateOf(org.name)).state === 'completed');
    expect(await flags(org.name)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    const rows = await sqlRows(h, org.guid);
    expect(rows.groups).toContainEqual({ id: made.id, name: 'made-since', authz_id: made.authz });
    expect(rows.containers).toEqual(expectedRows(org).containers);
    expect((await waitForRunEnd(h)).objects_failed).toBe(0);
  });

  it('resumes an org left started whose job is gone: restored, queued again in its run, completed', async () => {
    const [org] = await readyOrgs(1);
    const { run } = await startRun(h.ctx, T, { count: 'all', concurrency: 1 });
    // What Redis losing its last writes leaves behind: started, dark, partial rows, job gone.
    await leaveStartedWithoutJob(org, run.id);
    fleets.push(h.startWorkers());
    const status = await waitForRunEnd(h);
    expect(status).toMatchObject({ orgs_completed: 1, objects_failed: 0 });
    expect(await stateOf(org.name)).toMatchObject({ state: 'completed', fail_location: null });
    expect(await flags(org.name)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    expect(await sqlRows(h, org.guid)).toEqual(expectedRows(org));
    const { rows } = await h.ctx.db.query('SELECT requeues FROM mover.org_progress WHERE org_id = $1', [org.guid]);
    expect(rows[0].requeues).toBe(1);
  });

  it('fails an org left started whose job is gone when its run no longer works: restored, failed at its step', async () => {
    const [org] = await readyOrgs(1);
    const { run } = await startRun(h.ctx, T, { count: 'all', concurrency: 1 });
    await leaveStartedWithoutJob(org, run.id);
    expect((await h.api('POST', `/migrations/${T}/halt`)).status).toBe(200);
    fleets.push(h.startWorkers());
    await waitFor('reconciler', async () => (await stateOf(org.name)).state === 'failed');
    expect(await stateOf(org.name)).toMatchObject({ fail_location: 'migrate' });
    expect(await flags(org.name)).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
    await assertNoOrgDarkOrHalfDone([org]);
    expect((await waitForRunEnd(h)).objects_failed).toBe(1);
    const failures = (await h.api('GET', `/orgs/${org.name}`)).body.failures;
    expect(failures).toEqual([
      expect.objectContaining({
        migration_type: T,
        run_id: run.id,
        step: 'migrate',
        kind: 'infrastructure',
        detail: 'job missing; resolved by the reconciler',
      }),
    ]);
  });

  it('pauses the run when CouchDB stays away past the grace: the org in flight is put back and failed (infrastructure), the breaker opens, nothing else starts', async () => {
    const orgs = await readyOrgs(10);
    fleets.push(h.startWorkers({ concurrency: 2 }));
    await h.api('PUT', '/settings/sleep-time', { ms: 250 });
    await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 1 });
    await waitFor('2 orgs done', async () => (await h.api('GET', `/migrations/${T}/status`)).body.orgs_completed >= 2);
    await h.couchdb.stop();
    const open = await waitFor('breaker open, nothing in flight', async () => {
      const s = (await h.api('GET', `/migrations/${T}/status`)).body;
      return s.breaker?.state === 'open' && s.objects_in_progress === 0 ? s : null;
    });
    expect(open).toMatchObject({ state: 'working', fatal_stop: true, breaker: { state: 'open', kind: 'infrastructure', trips: 1 } });
    expect(open.stop_reason).toMatch(/migrate/);
    // Nothing starts while it is open.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await h.api('GET', `/migrations/${T}/status`)).body.orgs_completed).toBe(open.orgs_completed);
    const end = await Promise.all(orgs.map((o) => stateOf(o.name)));
    const failed = end.filter((r) => r.state === 'failed');
    expect(failed.length).toBe(1);
    expect(failed[0].fail_location).toBe('migrate');
    expect((await h.api('GET', `/orgs/${failed[0].org_name}`)).body.failures[0]).toMatchObject({ step: 'migrate', kind: 'infrastructure' });
    expect(end.filter((r) => r.state === 'ready').length).toBeGreaterThan(0);
    await assertNoOrgDarkOrHalfDone(orgs);
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().failing).toEqual(['couchdb']);
    // An operator's halt ends it like any run.
    expect((await h.api('POST', `/migrations/${T}/halt`)).status).toBe(200);
    expect(await waitForRunEnd(h)).toMatchObject({ state: 'halted', fatal_stop: true });
    await assertNoOrgDarkOrHalfDone(orgs);
  });
});
