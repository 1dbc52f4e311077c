// The org lease (src/frame/org-lease.ts): one holder at a time, renewed by its
// process with no connection held, free again when released or lapsed, and a
// holder that was overtaken knows it.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as runs from '../src/db/runs.js';
import * as tracker from '../src/db/state-tracker.js';
import { inTransaction } from '../src/stores/postgres.js';
import { hex32 } from '../dev/estate.js';
import { orgLeaseMs, takeOrgLease } from '../src/frame/org-lease.js';
import { createHarness, type Harness } from './support/harness.js';
import type { Job } from 'bullmq';
import { OrgDataError, OwnershipLostError } from '../src/errors.js';
import { replaceOrgObjects } from '../src/db/org-objects.js';
import { getOrgStateById } from '../src/db/org-states.js';
import type { OrgJobData } from '../src/frame/kind.js';
import { migration } from '../src/jobs/phase_2_migration.js';
import { runOrgJob, type OrgMigration } from '../src/frame/org-job.js';

let h: Harness;
const T = 'phase_2_migration';
// A 2 s lease (half the job lock), renewed every 666 ms.
beforeAll(async () => {
  h = await createHarness('lease', { jobLockMs: 4000 });
});
afterAll(() => h?.close());

async function org(name: string) {
  const guid = hex32();
  await tracker.insertOrgs(h.ctx.db, T, [{ name, guid }]);
  return guid;
}

const leaseRow = async (guid: string) =>
  (await h.ctx.db.query(`SELECT lease_owner, lease_until > now() AS current FROM mover.org_progress WHERE migration_type = $1 AND org_id = $2`, [T, guid]))
    .rows[0];

describe('org lease', () => {
  it('has one holder at a time, reads the org with the lease, and is free once released', async () => {
    const guid = await org('lease-one');
    const first = await takeOrgLease(h.ctx, T, guid, 'lease-one');
    expect(first?.org).toMatchObject({ org_name: 'lease-one', state: 'holding', run_id: null, requeues: 0 });
    expect(await takeOrgLease(h.ctx, T, guid, 'lease-one')).toBeNull();
    await first!.lease.release();
    expect(await leaseRow(guid)).toEqual({ lease_owner: null, current: null });
    const second = await takeOrgLease(h.ctx, T, guid, 'lease-one');
    expect(second).not.toBeNull();
    expect((await leaseRow(guid)).current).toBe(true);
    await second!.lease.release();
  });

  it('is kept alive by its process past its own length, and holds no connection meanwhile', async () => {
    expect(orgLeaseMs(h.ctx.config.jobLockMs)).toBe(2000);
    const guids = await Promise.all(['kept-a', 'kept-b', 'kept-c'].map(org));
    const leases = await Promise.all(guids.map((g, i) => takeOrgLease(h.ctx, T, g, `kept-${'abc'[i]}`)));
    expect(h.ctx.db.totalCount - h.ctx.db.idleCount).toBe(0);
    await sleep(3000);
    for (const [i, l] of leases.entries()) {
      expect(l!.lease.lost).toBe(false);
      expect((await leaseRow(guids[i])).current).toBe(true);
      expect(await takeOrgLease(h.ctx, T, guids[i], 'kept')).toBeNull();
    }
    await Promise.all(leases.map((l) => l!.lease.release()));
    expect(
      (await h.ctx.db.query(`SELECT count(*)::int AS n FROM mover.org_progress WHERE org_id = ANY($1) AND lease_owner IS NOT NULL`, [guids])).rows[0].n,
    ).toBe(0);
  });

  it('lapses when its holder stops renewing it; the holder then knows it lost it and cannot take it back', async () => {
    const guid = await org('lease-lapsed');
    const stale = await takeOrgLease(h.ctx, T, guid, 'lease-lapsed');
    // The holder's process stalled: its lease ran out before it renewed.
    await h.ctx.db.query(`UPDATE mover.org_progress SET lease_until = now() - interval '1 second' WHERE org_id = $1`, [guid]);
    const other = await takeOrgLease(h.ctx, T, guid, 'lease-lapsed');
    expect(other).not.toBeNull();
    await sleep(1000); // the next renewal finds the lease is another's
    expect(stale!.lease.lost).toBe(true);
    expect(await stale!.lease.retake()).toBeNull();
    await stale!.lease.release(); // releases nothing of the other's
    expect((await leaseRow(guid)).current).toBe(true);
    expect(other!.lease.lost).toBe(false);
    await other!.lease.release();
    expect((await leaseRow(guid)).lease_owner).toBeNull();
  });

  it('is taken again by its own holder when the holder could not confirm it but nobody else took it', async () => {
    const guid = await org('lease-retaken');
    const held = await takeOrgLease(h.ctx, T, guid, 'lease-retaken');
    await h.ctx.db.query(`UPDATE mover.org_progress SET lease_until = now() - interval '1 second' WHERE org_id = $1`, [guid]);
    const again = await held!.lease.retake();
    expect(again?.org).toMatchObject({ org_name: 'lease-retaken', state: 'holding' });
    expect(held!.lease.lost).toBe(false);
    expect((await leaseRow(guid)).current).toBe(true);
    await held!.lease.release();
  });

  it('fences the statements that move an org: a holder overtaken after a stall can neither checkpoint, complete, fail, requeue nor restore it', async () => {
    const guid = await org('lease-fenced');
    await tracker.readyHolding(h.ctx.db, T, ['lease-fenced']);
    const run = (await runs.createRun(h.ctx.db, T, null, 1, 1))!;
    await runs.doneEnqueueing(h.ctx.db, run.id);
    const stalled = await takeOrgLease(h.ctx, T, guid, 'lease-fenced');
    const me = { type: T, orgId: guid, runId: run.id, leaseToken: stalled!.lease.token, generation: 0 };
    expect((await tracker.claimOrg(h.ctx.db, me, 'set_503')).claimed).toBe(true);
    // It stalls past its lease; a new delivery takes the org over, with a higher fencing epoch.
    await h.ctx.db.query(`UPDATE mover.org_progress SET lease_until = now() - interval '1 second' WHERE org_id = $1`, [guid]);
    const other = await takeOrgLease(h.ctx, T, guid, 'lease-fenced');
    expect(other?.org).toMatchObject({ state: 'started', run_id: run.id, current_step: 'set_503' });
    expect(other!.lease.epoch).toBeGreaterThan(stalled!.lease.epoch);
    const lost = (p: Promise<unknown>) => expect(p).rejects.toBeInstanceOf(OwnershipLostError);
    await lost(tracker.setStep(h.ctx.db, me, 'clear_503'));
    await lost(tracker.completeOrg(h.ctx.db, me));
    await lost(tracker.failOrg(h.ctx.db, me, { step: 'set_503', detail: 'stale' }));
    await lost(tracker.requeueOrg(h.ctx.db, me));
    await lost(inTransaction(h.ctx.db, (c) => tracker.holdStartedOrg(c, me)));
    await lost(replaceOrgObjects(h.ctx.db, me, { containers: [], groups: [] }));
    const row = (await h.ctx.db.query(`SELECT state, current_step, lease_owner, rows_in_sql FROM mover.org_progress WHERE org_id = $1`, [guid])).rows[0];
    expect(row).toEqual({ state: 'started', current_step: 'set_503', lease_owner: other!.lease.token, rows_in_sql: false });
    // The holder does them.
    const holder = { ...me, leaseToken: other!.lease.token };
    expect((await replaceOrgObjects(h.ctx.db, holder, { containers: [], groups: [] })).foreignRows).toBe(0);
    await tracker.setStep(h.ctx.db, holder, 'clear_503');
    other!.lease.handingOver();
    expect(await tracker.completeOrg(h.ctx.db, holder)).toEqual({ runMayBeDone: true });
    other!.lease.handedOver();
    expect((await h.ctx.db.query(`SELECT state, lease_owner FROM mover.org_progress WHERE org_id = $1`, [guid])).rows[0]).toEqual({
      state: 'completed',
      lease_owner: null,
    });
    await stalled!.lease.release();
    await other!.lease.release();
  });
});

describe('a delivery whose preflight refusal does not hold under the lease', () => {
  it('claims the org after all, in the same delivery: it is not failed, and the run counts it once', async () => {
    const guid = await org('lease-ask-again');
    await tracker.readyHolding(h.ctx.db, T, ['lease-ask-again']);
    // A run of its own (another of this file's may still be active for the type).
    const run = (await runs.createRun(h.ctx.db, 'lease-ask-again-run', null, 1, 1))!;
    await tracker.markInRun(h.ctx.db, T, run.id, [{ name: 'lease-ask-again', guid }]);
    // Refuses when read before the lease (as a revert still holding the org would make it), passes under it.
    let asked = 0;
    const ran: string[] = [];
    const kind: OrgMigration = {
      type: T,
      preflight: async () => {
        if (asked++ === 0) throw new OrgDataError('served from SQL (read while another held the org)');
      },
      claimGuard: migration.claimGuard,
      steps: [{ name: 'set_503', run: async (_ctx, o) => void ran.push(o.orgName) }],
      restore: async () => {},
    };
    const job = { data: { runId: run.id, orgName: 'lease-ask-again', orgId: guid } } as unknown as Job<OrgJobData>;
    expect(await runOrgJob(kind, h.ctx, job, 'token')).toEqual({ outcome: 'completed' });
    expect(asked).toBe(2);
    expect(ran).toEqual(['lease-ask-again']);
    expect(await getOrgStateById(h.ctx.db, T, guid)).toMatchObject({ state: 'completed', fail_location: null, run_id: run.id });
    expect(await leaseRow(guid)).toEqual({ lease_owner: null, current: null });
    expect(await runs.getRun(h.ctx.db, run.id)).toMatchObject({ orgs_failed: 0, orgs_finished: 1 });
  });
});
