// The state guards: every transition is conditional, so races and stale jobs cannot move an org wrongly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as runs from '../src/db/runs.js';
import * as tracker from '../src/db/state-tracker.js';
import { getOrgState, unheldStartedOrgs } from '../src/db/org-states.js';
import { hex32 } from '../dev/estate.js';
import { countObjects, insertObjects } from '../src/db/org-objects.js';
import { OwnershipLostError } from '../src/errors.js';
import { createHarness, type Harness } from './support/harness.js';
import { claimHeld } from './support/held.js';

let h: Harness;
const T = 'phase_2_migration';
beforeAll(async () => {
  h = await createHarness('tracker');
});
afterAll(() => h?.close());

async function org(name: string, state: tracker.OrgState = 'ready') {
  const guid = hex32();
  await tracker.insertOrgs(h.ctx.db, T, [{ name, guid }]);
  if (state !== 'holding') await tracker.forceState(h.ctx.db, T, name, state);
  return guid;
}

describe('state tracker guards', () => {
  it('reports a second capture of one org as duplicate (legacy 23505)', async () => {
    const guid = hex32();
    expect(await tracker.insertOrgs(h.ctx.db, T, [{ name: 'dup', guid }])).toEqual({ inserted: ['dup'], duplicate: [] });
    expect(await tracker.insertOrgs(h.ctx.db, T, [{ name: 'dup', guid }])).toEqual({ inserted: [], duplicate: ['dup'] });
    expect((await getOrgState(h.ctx.db, T, 'dup'))?.state).toBe('holding');
  });

  it('takes a name already captured for the type as captured, even under another guid (an org made again under its name)', async () => {
    expect((await tracker.insertOrgs(h.ctx.db, T, [{ name: 'renamed-twice', guid: hex32() }])).inserted).toEqual(['renamed-twice']);
    expect(await tracker.insertOrgs(h.ctx.db, T, [{ name: 'renamed-twice', guid: hex32() }])).toEqual({ inserted: [], duplicate: ['renamed-twice'] });
    const { rows } = await h.ctx.db.query(`SELECT count(*)::int AS n FROM org_migration_state WHERE org_name = 'renamed-twice'`);
    expect(rows[0].n).toBe(1);
  });

  it('lets exactly one of many concurrent starts win: one lease among many deliveries, one claim among many sent under it', async () => {
    const guid = await org('race');
    const run = (await runs.createRun(h.ctx.db, 'guard-test-a', null, 1, 1))!;
    const starts = await Promise.all(Array.from({ length: 10 }, () => claimHeld(h.ctx.db, { type: T, orgId: guid, runId: run.id })));
    const won = starts.filter((r) => r.leased && r.claim.claimed);
    expect(won).toHaveLength(1);
    expect(starts.filter((r) => r.leased)).toHaveLength(1);
    expect(await getOrgState(h.ctx.db, T, 'race')).toMatchObject({ state: 'started', run_id: run.id });
    await tracker.failOrg(h.ctx.db, won[0].key, { step: 'test', detail: 'done with it' });
    // Under one lease, ten claims at once: the claim's own conditional update lets one through.
    const again = await org('race-2');
    const held = await claimHeld(h.ctx.db, { type: T, orgId: again, runId: run.id }, { from: 'completed' });
    expect(held.claim.claimed).toBe(false);
    const claims = await Promise.all(Array.from({ length: 10 }, () => tracker.claimOrg(h.ctx.db, held.key)));
    expect(claims.filter((r) => r.claimed)).toHaveLength(1);
    // Without the lease, no claim at all.
    await expect(tracker.claimOrg(h.ctx.db, { ...held.key, leaseToken: 'someone-else' })).rejects.toBeInstanceOf(OwnershipLostError);
    await tracker.failOrg(h.ctx.db, { ...held.key, generation: 0 }, { step: 'test', detail: 'done with it' });
  });

  it('does not start an org for a run that is halting', async () => {
    const guid = await org('late');
    const run = (await runs.createRun(h.ctx.db, 'guard-test-b', null, 1, 1))!;
    await runs.haltRun(h.ctx.db, run.id, 'test', false);
    expect((await claimHeld(h.ctx.db, { type: T, orgId: guid, runId: run.id })).claim).toEqual({ claimed: false, reason: 'run_not_working' });
    expect((await getOrgState(h.ctx.db, T, 'late'))?.state).toBe('ready');
  });

  it('never lets a stale job complete or fail an org another run owns, another lease holds, an older generation claimed, or that already completed', async () => {
    const guid = await org('owned');
    const a = (await runs.createRun(h.ctx.db, 'guard-test-c', null, 1, 1))!;
    const { claim, key } = await claimHeld(h.ctx.db, { type: T, orgId: guid, runId: a.id });
    expect(claim).toEqual({ claimed: true });
    for (const stale of [
      { ...key, runId: '999999' },
      { ...key, leaseToken: 'another' },
      { ...key, generation: key.generation + 1 },
    ]) {
      await expect(tracker.completeOrg(h.ctx.db, stale)).rejects.toBeInstanceOf(OwnershipLostError);
      await expect(tracker.failOrg(h.ctx.db, stale, { step: 'migrate', detail: 'stale' })).rejects.toBeInstanceOf(OwnershipLostError);
      await expect(tracker.setStep(h.ctx.db, stale, 'clear_503')).rejects.toBeInstanceOf(OwnershipLostError);
      await expect(tracker.requeueOrg(h.ctx.db, stale)).rejects.toBeInstanceOf(OwnershipLostError);
    }
    expect(await getOrgState(h.ctx.db, T, 'owned')).toMatchObject({ state: 'started', current_step: 'start', requeues: 0 });
    expect(await tracker.completeOrg(h.ctx.db, key)).toEqual({ runMayBeDone: true });
    await expect(tracker.failOrg(h.ctx.db, key, { step: 'migrate', detail: 'late' })).rejects.toBeInstanceOf(OwnershipLostError);
    expect(await getOrgState(h.ctx.db, T, 'owned')).toMatchObject({ state: 'completed', fail_location: null });
    const { rows } = await h.ctx.db.query(`SELECT orgs_finished, orgs_failed FROM mover.migration_runs WHERE id = $1`, [a.id]);
    expect(rows[0]).toEqual({ orgs_finished: 1, orgs_failed: 0 });
  });

  it('never has more orgs of a type in flight than the run concurrency, however many claim at once', async () => {
    const guids = await Promise.all(Array.from({ length: 8 }, (_, i) => org(`gate-${i}`)));
    const run = (await runs.createRun(h.ctx.db, 'guard-test-e', null, 8, 3))!;
    const first = await Promise.all(guids.map((g) => claimHeld(h.ctx.db, { type: T, orgId: g, runId: run.id })));
    expect(first.filter((r) => r.claim.claimed)).toHaveLength(3);
    expect(first.filter((r) => !r.claim.claimed && r.claim.reason === 'at_capacity')).toHaveLength(5);
    expect(await runs.inFlightCount(h.ctx.db, run.id)).toBe(3);
    // One finishes: exactly one more place.
    await tracker.completeOrg(h.ctx.db, first.find((r) => r.claim.claimed)!.key);
    const waiting = first.filter((r) => !r.claim.claimed);
    const second = await Promise.all(waiting.map((w) => tracker.claimOrg(h.ctx.db, w.key)));
    expect(second.filter((r) => r.claimed)).toHaveLength(1);
    // An operator forcing a started org elsewhere frees its place once the reconciler's sweep runs.
    const forced = (await getOrgState(
      h.ctx.db,
      T,
      (await h.ctx.db.query(`SELECT org_name FROM mover.org_progress WHERE run_id = $1 AND in_flight LIMIT 1`, [run.id])).rows[0].org_name,
    ))!;
    expect(await tracker.forceState(h.ctx.db, T, forced.org_name, 'failed')).toBe(true);
    expect(await runs.inFlightCount(h.ctx.db, run.id)).toBe(2);
    expect(await tracker.clearStaleInFlight(h.ctx.db, T)).toEqual([]);
    await h.ctx.db.query(`UPDATE org_migration_state SET state = 'holding' WHERE org_id = ANY($1) AND state = 'started'`, [guids]);
    expect((await tracker.clearStaleInFlight(h.ctx.db, T)).length).toBe(2);
    expect(await runs.inFlightCount(h.ctx.db, run.id)).toBe(0);
  });

  it('moves holding → ready → holding and failed → holding only from the expected state', async () => {
    await org('h1', 'holding');
    await org('f1', 'failed');
    await org('c1', 'completed');
    expect(await tracker.readyHolding(h.ctx.db, T, ['h1', 'f1', 'c1'])).toEqual(['h1']);
    expect(await tracker.moveOrgs(h.ctx.db, T, ['h1', 'c1'], 'ready', 'holding')).toEqual(['h1']);
    expect(await tracker.moveOrgs(h.ctx.db, T, ['f1', 'c1'], 'failed', 'holding')).toEqual(['f1']);
    const states = await Promise.all(['h1', 'f1', 'c1'].map(async (n) => (await getOrgState(h.ctx.db, T, n))?.state));
    expect(states).toEqual(['holding', 'holding', 'completed']);
  });

  it('allows one active run per migration type', async () => {
    const first = await runs.createRun(h.ctx.db, 'guard-test-d', 5, 0, 1);
    expect(first).not.toBeNull();
    expect(await runs.createRun(h.ctx.db, 'guard-test-d', 5, 0, 1)).toBeNull();
    // Not while its starter is still queueing its jobs, whatever its counts say.
    expect(await runs.finishRunIfDone(h.ctx.db, first!.id)).toBe(false);
    expect(await runs.doneEnqueueing(h.ctx.db, first!.id)).toBe(true);
    expect(await runs.finishRunIfDone(h.ctx.db, first!.id)).toBe(true);
    expect(await runs.createRun(h.ctx.db, 'guard-test-d', 5, 0, 1)).not.toBeNull();
  });
});

describe('a delivery start: lease and claim in one round trip', () => {
  const lease = (guid: string, name: string, leaseToken: string, { runId, ...ask }: Partial<tracker.ClaimAsk> & { runId: string }) =>
    tracker.leaseAndClaim(h.ctx.db, { type: T, orgId: guid, runId }, name, leaseToken, 10_000, { firstStep: 'set_503', from: 'ready', refused: false, ...ask });
  const progress = async (guid: string) =>
    (await h.ctx.db.query(`SELECT lease_owner, in_flight, current_step, state FROM mover.org_progress WHERE migration_type = $1 AND org_id = $2`, [T, guid]))
      .rows[0];

  it('claims a ready org under its lease and answers the org as it was before the claim; sent again, it finds it started by its run', async () => {
    const guid = await org('lc-ready');
    const run = (await runs.createRun(h.ctx.db, 'lease-claim-a', null, 1, 1))!;
    const first = await lease(guid, 'lc-ready', 'token-a', { runId: run.id });
    expect(first).toMatchObject({ leased: true, claim: { claimed: true }, guardCount: 0, org: { state: 'ready' } });
    expect(await progress(guid)).toEqual({ lease_owner: 'token-a', in_flight: true, current_step: 'set_503', state: 'started' });
    const again = await lease(guid, 'lc-ready', 'token-a', { runId: run.id });
    expect(again).toMatchObject({ leased: true, claim: { claimed: false }, org: { state: 'started', run_id: run.id, current_step: 'set_503' } });
    // Another leaseToken finds the lease taken and claims nothing.
    expect(await lease(guid, 'lc-ready', 'token-b', { runId: run.id })).toEqual({ leased: false });
    expect(await progress(guid)).toMatchObject({ lease_owner: 'token-a', state: 'started' });
    await tracker.failOrg(h.ctx.db, { type: T, orgId: guid, runId: run.id, leaseToken: 'token-a', generation: 0 }, { step: 'test', detail: 'done with it' });
  });

  it("shows the reconciler a started org only once nobody holds its lease: a delivery's is held, a lapsed or given-up one is not", async () => {
    const guid = await org('lc-unheld');
    const run = (await runs.createRun(h.ctx.db, 'lease-claim-unheld', null, 1, 1))!;
    await lease(guid, 'lc-unheld', 'token-u', { runId: run.id });
    const unheld = async () => (await unheldStartedOrgs(h.ctx.db, T, 'lease-claim-unheld')).filter((r) => r.org_id === guid).map((r) => r.state);
    expect(await unheld()).toEqual([]);
    // The lease's time has passed (its process died or stalled): the org is the reconciler's to look at.
    await h.ctx.db.query(`UPDATE mover.org_progress SET lease_until = now() - interval '1 second' WHERE migration_type = $1 AND org_id = $2`, [T, guid]);
    expect(await unheld()).toEqual(['started']);
    // Given up (no owner): the same.
    await h.ctx.db.query(`UPDATE mover.org_progress SET lease_owner = NULL, lease_until = NULL WHERE migration_type = $1 AND org_id = $2`, [T, guid]);
    expect(await unheld()).toEqual(['started']);
    expect(await progress(guid)).toMatchObject({ lease_owner: null, in_flight: true, state: 'started' });
  });

  it('claims nothing when the preflight refused the org or its guard counts rows against it, and says what it counted', async () => {
    const refusedGuid = await org('lc-refused');
    const foreignGuid = await org('lc-foreign');
    const run = (await runs.createRun(h.ctx.db, 'lease-claim-b', null, 2, 1))!;
    expect(await lease(refusedGuid, 'lc-refused', 'token-c', { runId: run.id, refused: true })).toMatchObject({
      leased: true,
      claim: { claimed: false },
      guardCount: 0,
      org: { state: 'ready' },
    });
    // Three rows of the org in SQL that mover did not write.
    const row = (name: string) => ({ id: hex32(), authz_id: hex32(), name, last_updated_by: hex32(), created_at: new Date(), updated_at: new Date() });
    await insertObjects(h.ctx.db, 'containers', foreignGuid, [row('c1'), row('c2')]);
    await insertObjects(h.ctx.db, 'groups', foreignGuid, [row('g1')]);
    const foreign = await lease(foreignGuid, 'lc-foreign', 'token-d', { runId: run.id, guard: 'foreign_rows' });
    expect(foreign).toMatchObject({ leased: true, claim: { claimed: false }, guardCount: 3, org: { state: 'ready' } });
    for (const name of ['lc-refused', 'lc-foreign']) expect((await getOrgState(h.ctx.db, T, name))?.state).toBe('ready');
    expect(await progress(refusedGuid)).toMatchObject({ lease_owner: 'token-c', in_flight: false });
    expect(await progress(foreignGuid)).toMatchObject({ lease_owner: 'token-d', in_flight: false });
    expect(
      (await h.ctx.db.query(`SELECT count(*)::int AS n FROM mover.org_progress WHERE migration_type = $1 AND in_flight AND run_id = $2`, [T, run.id])).rows[0]
        .n,
    ).toBe(0);
    expect(await countObjects(h.ctx.db, foreignGuid)).toEqual({ containers: 2, groups: 1 });
  });
});
