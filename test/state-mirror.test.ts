// The state mirror and counters (migrations/008_org_state_mirror.sql): the
// org list by state and the counts by state agree with Chef's table after
// every kind of state change, including a hand edit once resynced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as runs from '../src/db/runs.js';
import * as tracker from '../src/db/state-tracker.js';
import * as maintenance from '../src/db/maintenance.js';
import { countByState, listOrgs } from '../src/db/org-states.js';
import { hex32 } from '../dev/estate.js';
import { claimHeld, leaseOnly } from './support/held.js';
import { createHarness, type Harness } from './support/harness.js';

let h: Harness;
const T = 'phase_2_migration';
beforeAll(async () => {
  h = await createHarness('mirror');
});
afterAll(() => h?.close());

/** Counts by state straight from Chef's table, the truth the counters must match. */
async function truth() {
  const { rows } = await h.ctx.db.query(
    `SELECT migration_type, state::text AS state, count(*)::int AS count FROM org_migration_state GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  return rows;
}
const names = (rows: { org_name: string }[]) => rows.map((r) => r.org_name);

describe('state mirror', () => {
  it('keeps the counts and the list by state in step with every transition', async () => {
    const orgs = Array.from({ length: 40 }, (_, i) => ({ name: `m-${String(i).padStart(2, '0')}`, guid: hex32() }));
    await tracker.insertOrgs(h.ctx.db, T, orgs);
    await tracker.insertOrgs(h.ctx.db, 'phase_2_migration_prep', orgs.slice(0, 5));
    expect(await countByState(h.ctx.db)).toEqual(await truth());

    await tracker.readyHolding(h.ctx.db, T, names(orgs.slice(0, 30).map((o) => ({ org_name: o.name }))));
    const run = (await runs.createRun(h.ctx.db, T, null, 30, 100))!;
    await tracker.markInRun(h.ctx.db, T, run.id, orgs.slice(0, 30));
    // Ten claimed at once: the striped counters take concurrent claims.
    const claims = await Promise.all(orgs.slice(0, 10).map((o) => claimHeld(h.ctx.db, { type: T, orgId: o.guid, runId: run.id })));
    expect(claims.every((c) => c.claim.claimed)).toBe(true);
    for (const c of claims.slice(0, 4)) await tracker.completeOrg(h.ctx.db, c.key);
    for (const c of claims.slice(4, 6)) await tracker.failOrg(h.ctx.db, c.key, { step: 'verify', detail: 'differs' });
    expect(await tracker.requeueOrg(h.ctx.db, claims[6].key)).toBe(true);
    const unstarted = await claimHeld(h.ctx.db, { type: T, orgId: orgs[20].guid, runId: run.id }, { from: 'completed' });
    expect(await tracker.failUnstarted(h.ctx.db, unstarted.key, 'preflight', 'rows in SQL')).toBe(true);
    await tracker.resetOrgs(h.ctx.db, T, [orgs[5].name], async () => {});
    await tracker.moveOrgs(h.ctx.db, T, [orgs[0].name], 'completed', 'purge_started');
    expect(await tracker.moveOrg(h.ctx.db, T, orgs[0].guid, await leaseOnly(h.ctx.db, T, orgs[0].guid), 'purge_started', 'purge_successful')).toBe(true);
    // A revert run: one org completed → started → ready, another refused, started → completed.
    const revertRun = (await runs.createRun(h.ctx.db, 'phase_2_revert', null, 2, 10))!;
    const reverts = [];
    for (const o of orgs.slice(1, 3)) {
      const r = await claimHeld(h.ctx.db, { type: T, orgId: o.guid, runId: revertRun.id }, { firstStep: 'set_503', from: 'completed' });
      expect(r.claim).toEqual({ claimed: true });
      reverts.push(r);
    }
    expect(await tracker.completeOrg(h.ctx.db, reverts[0].key, null, 'ready')).toEqual({ runMayBeDone: expect.any(Boolean) });
    const refusal = { step: 'compare', detail: 'changed on SQL', kind: 'refused' as const, to: 'completed' as const };
    await tracker.failOrg(h.ctx.db, reverts[1].key, refusal);
    // Refused, it is done in that run: its claim does not take it again.
    const again = await claimHeld(
      h.ctx.db,
      { type: T, orgId: orgs[2].guid, runId: revertRun.id },
      { firstStep: 'set_503', from: 'completed', leaseToken: reverts[1].key.leaseToken },
    );
    expect(again.claim).toEqual({
      claimed: false,
      reason: 'finished',
    });
    await tracker.forceState(h.ctx.db, T, orgs[35].name, 'failed');

    expect(await countByState(h.ctx.db)).toEqual(await truth());
    expect(await countByState(h.ctx.db, T)).toEqual((await truth()).filter((r) => r.migration_type === T));
    const { rows: failed } = await h.ctx.db.query(`SELECT org_name FROM org_migration_state WHERE migration_type = $1 AND state = 'failed' ORDER BY org_name`, [
      T,
    ]);
    expect(names(await listOrgs(h.ctx.db, T, { state: 'failed', limit: 100 }))).toEqual(names(failed));
    expect(names(failed)).toEqual(['m-04', 'm-20', 'm-35']);
    // Pages by state, cursor by name.
    const first = await listOrgs(h.ctx.db, T, { state: 'started', limit: 2 });
    const second = await listOrgs(h.ctx.db, T, { state: 'started', limit: 10, cursor: first[1].org_name });
    expect([...names(first), ...names(second)]).toEqual(['m-07', 'm-08', 'm-09']);
  });

  it('catches up with a hand edit of Chef table at the resync; until then the list leaves the org out rather than misstate it', async () => {
    const guid = hex32();
    await tracker.insertOrgs(h.ctx.db, T, [{ name: 'hand-edited', guid }]);
    await h.ctx.db.query(`UPDATE org_migration_state SET state = 'failed' WHERE org_id = $1`, [guid]);
    // A row written by hand, with no progress row at all.
    await h.ctx.db.query(`INSERT INTO org_migration_state (org_name, org_id, migration_type, state) VALUES ('hand-made', $1, $2, 'ready')`, [hex32(), T]);
    expect(names(await listOrgs(h.ctx.db, T, { state: 'holding', limit: 100 }))).not.toContain('hand-edited');
    expect(names(await listOrgs(h.ctx.db, T, { state: 'failed', limit: 100 }))).not.toContain('hand-edited');
    expect(await countByState(h.ctx.db)).not.toEqual(await truth());

    expect(await maintenance.resyncStateMirror(h.ctx.db)).toBe(2);
    expect(names(await listOrgs(h.ctx.db, T, { state: 'failed', limit: 100 }))).toContain('hand-edited');
    expect(names(await listOrgs(h.ctx.db, T, { state: 'ready', limit: 100 }))).toContain('hand-made');
    expect(await countByState(h.ctx.db)).toEqual(await truth());
    expect(await maintenance.resyncStateMirror(h.ctx.db)).toBe(0);

    // A row deleted by hand leaves the counts at the next resync.
    await h.ctx.db.query(`DELETE FROM org_migration_state WHERE org_name = 'hand-made'`);
    expect(await maintenance.resyncStateMirror(h.ctx.db)).toBe(1);
    expect(await countByState(h.ctx.db)).toEqual(await truth());
  });

  it('walks the table a few orgs at a time: a first start on a Chef database full of rows mover never wrote, and hand edits spread over it', async () => {
    // Rows written straight into Chef's table, with no mirror row at all (what mover finds on its first start).
    await h.ctx.db.query(
      `INSERT INTO org_migration_state (org_name, org_id, migration_type, state)
       SELECT 'bulk-' || lpad(i::text, 3, '0'), lpad(to_hex(i + 4096), 32, '0'), $1, (CASE WHEN i % 3 = 0 THEN 'completed' ELSE 'holding' END)::org_state FROM generate_series(1, 23) AS i`,
      [T],
    );
    // Two hand edits of orgs mover knows, one deleted.
    const { rows: known } = await h.ctx.db.query(
      `SELECT org_id FROM mover.org_progress WHERE migration_type = $1 AND state = 'holding' ORDER BY org_id LIMIT 3`,
      [T],
    );
    await h.ctx.db.query(`UPDATE org_migration_state SET state = 'failed' WHERE org_id = ANY($1)`, [[known[0].org_id, known[1].org_id]]);
    await h.ctx.db.query(`DELETE FROM org_migration_state WHERE org_id = $1`, [known[2].org_id]);
    expect(await maintenance.resyncStateMirror(h.ctx.db, { batch: 4, pauseMs: 0 })).toBe(23 + 2 + 1);
    expect(await countByState(h.ctx.db)).toEqual(await truth());
    const { rows: mirror } = await h.ctx.db.query(
      `SELECT count(*)::int AS n FROM org_migration_state s JOIN mover.org_progress p USING (migration_type, org_id) WHERE p.state = s.state::text AND s.org_name LIKE 'bulk-%'`,
    );
    expect(mirror[0].n).toBe(23);
    expect(names(await listOrgs(h.ctx.db, T, { state: 'completed', limit: 100 })).filter((n) => n.startsWith('bulk-'))).toHaveLength(7);
    expect(await maintenance.resyncStateMirror(h.ctx.db, { batch: 4, pauseMs: 0 })).toBe(0);
  });

  it('rebuilds the counts by state when they drifted from the orgs, and leaves right ones alone', async () => {
    expect(await maintenance.repairStateCounts(h.ctx.db)).toBe(0);
    // What a TRUNCATE, or a change made with triggers disabled, leaves.
    await h.ctx.db.query(`DELETE FROM mover.org_state_counts WHERE state = 'ready'`);
    await h.ctx.db.query(`UPDATE mover.org_state_counts SET n = n + 5 WHERE state = 'holding'`);
    expect(await countByState(h.ctx.db)).not.toEqual(await truth());
    expect(await maintenance.repairStateCounts(h.ctx.db)).toBeGreaterThan(0);
    expect(await countByState(h.ctx.db)).toEqual(await truth());
    expect(await maintenance.repairStateCounts(h.ctx.db)).toBe(0);
  });
});
