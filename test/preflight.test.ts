// The routing preflight: a routing field left in dl_override, or a dl_default
// that does not say what the phase expects, stops the phase at the step that
// would route orgs, naming the key and field and how to clear it; nothing is
// routed meanwhile. Once cleared, starting the phase again goes on from there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hex32 } from '../dev/estate.js';
import { createHarness, type Harness } from './support/harness.js';
import { confirmWhenWaiting, deletePrecreatedFromCouch, getPhase, stepOf, waitPhase } from './support/phases.js';

let h: Harness;
const dl = () => h.ctx.darklaunchRedis;
const SQL_BORN = hex32();

beforeAll(async () => {
  h = await createHarness('preflight');
  h.startWorkers({ phaseTickMs: 200 });
  await h.seed([{ name: 'pf-one' }, { name: 'pf-two' }, { name: 'pf-three' }]);
});
afterAll(() => h?.close());

describe('routing preflight', () => {
  it('stops phase 1 before its migration when dl_override holds a routing field, then resumes once it is cleared', async () => {
    await dl().hset('dl_override', { couchdb_containers: 'false', some_other_feature: 'true' });
    const override = await h.api('GET', '/darklaunch/override');
    expect(override.body).toEqual({
      key: 'dl_override',
      fields: { couchdb_containers: 'false', some_other_feature: 'true' },
      conflicts: [{ field: 'couchdb_containers', value: 'false', fix: 'HDEL dl_override couchdb_containers' }],
    });

    expect((await h.api('POST', '/phases/1/start', { orgs: ['pf-one'] })).status).toBe(202);
    const failed = await waitPhase(h, 1, ['failed', 'completed', 'halted']);
    expect(failed.state).toBe('failed');
    const step = stepOf(failed, '1.4');
    expect(step.state).toBe('failed');
    expect(step.detail.error).toContain('dl_override.couchdb_containers = "false"');
    expect(step.detail.preflight).toEqual([
      expect.objectContaining({
        key: 'dl_override',
        field: 'couchdb_containers',
        value: 'false',
        fix: expect.stringMatching(/^redis-cli -h 127\.0\.0\.1 -p \d+ -n \d+ HDEL dl_override couchdb_containers$/),
      }),
    ]);
    // Nothing was routed: the org is still ready, with no flags of its own.
    expect((await h.api('GET', '/orgs/pf-one')).body.states.phase_2_migration.state).toBe('ready');
    expect(await dl().exists('dl_org_pf-one')).toBe(0);

    await dl().hdel('dl_override', 'couchdb_containers');
    expect((await h.api('POST', '/phases/1/start', { orgs: ['pf-one'] })).body.resumed).toBe(true);
    expect((await waitPhase(h, 1, ['failed', 'completed', 'halted'])).state).toBe('completed');
    expect(await dl().hgetall('dl_org_pf-one')).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    // The unrelated field is not mover's business.
    expect(await dl().hgetall('dl_override')).toEqual({ some_other_feature: 'true' });
  });

  it('refuses a direct migration run too, with 409 naming the key and field', async () => {
    await dl().hset('dl_override', '503_mode', 'true');
    const res = await h.api('POST', '/migrations/phase_2_migration/start', { count: 'all', concurrency: 1 });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error: 'routing_preflight_failed', message: expect.stringContaining('dl_override.503_mode = "true"') });
    const revert = await h.api('POST', '/migrations/phase_2_revert/start', { orgs: ['pf-one'] });
    expect(revert.status).toBe(409);
    await dl().hdel('dl_override', '503_mode');
    expect((await h.api('GET', '/migrations/phase_2_revert/status')).body.run_id).toBeNull();
  });

  it('stops step 2.6 while dl_override routes every org, leaving dl_default as it was', async () => {
    await dl().hset('dl_override', 'couchdb_groups', 'true');
    expect((await h.api('POST', '/phases/2/start', {})).status).toBe(202);
    await confirmWhenWaiting(h, 2, '2.1');
    await confirmWhenWaiting(h, 2, '2.3');
    await deletePrecreatedFromCouch(h);
    const failed = await waitPhase(h, 2, ['failed', 'completed', 'halted']);
    expect(stepOf(failed, '2.5').state).toBe('done');
    expect(stepOf(failed, '2.6')).toMatchObject({
      state: 'failed',
      detail: { preflight: [expect.objectContaining({ key: 'dl_override', field: 'couchdb_groups' })] },
    });
    expect(await dl().hgetall('dl_default')).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true' });

    // An org still to migrate without its own pin would be stranded on SQL by the flip: 2.6 pins it first.
    // One with containers/groups in SQL already (made there) is left to be served from SQL.
    await dl().hdel('dl_override', 'couchdb_groups');
    await dl().del('dl_org_pf-two');
    await h.ctx.db.query(`INSERT INTO org_migration_state (org_name, org_id, migration_type) VALUES ('pf-sqlborn', $1, 'phase_2_migration')`, [SQL_BORN]);
    await h.ctx.db.query(`INSERT INTO containers VALUES ($1, $2, $3, 'clients', $4, now(), now())`, [hex32(), SQL_BORN, hex32(), hex32()]);
    await h.api('POST', '/phases/2/start', {});
    await confirmWhenWaiting(h, 2, '2.7');
    await confirmWhenWaiting(h, 2, '2.8');
    const done = await waitPhase(h, 2, ['failed', 'completed', 'halted']);
    expect(done.state).toBe('completed');
    expect(stepOf(done, '2.6').detail).toMatchObject({ pinned_now: 1, left_on_sql: ['pf-sqlborn'] });
    expect(await dl().hgetall('dl_org_pf-two')).toEqual({ couchdb_containers: 'true', couchdb_groups: 'true' });
    expect(await dl().exists('dl_org_pf-sqlborn')).toBe(0);
    expect(await dl().hgetall('dl_default')).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false' });
  });

  it('stops phase 3 before its migration when dl_default does not route to SQL', async () => {
    await dl().hset('dl_default', 'couchdb_containers', 'true');
    expect((await h.api('POST', '/phases/3/start', { sleep_time_ms: 0 })).status).toBe(202);
    const failed = await waitPhase(h, 3, ['failed', 'completed', 'halted']);
    expect(stepOf(failed, '3.3').detail.preflight).toEqual([
      expect.objectContaining({
        key: 'dl_default',
        field: 'couchdb_containers',
        value: 'true',
        fix: expect.stringMatching(/HSET dl_default couchdb_containers false$/),
      }),
    ]);
    expect((await h.api('GET', '/orgs/pf-two')).body.states.phase_2_migration.state).toBe('ready');
    await dl().hset('dl_default', 'couchdb_containers', 'false');
    await h.api('POST', '/phases/3/start', { sleep_time_ms: 0 });
    expect((await waitPhase(h, 3, ['failed', 'completed', 'halted'])).state).toBe('completed');
    for (const org of ['pf-two', 'pf-three']) expect((await h.api('GET', `/orgs/${org}`)).body.states.phase_2_migration.state).toBe('completed');
    // The org made on SQL failed its preflight there, untouched.
    expect((await h.api('GET', '/orgs/pf-sqlborn')).body.states.phase_2_migration).toMatchObject({ state: 'failed', fail_location: 'preflight' });
    expect(await dl().exists('dl_org_pf-sqlborn')).toBe(0);
    expect((await getPhase(h, 3)).steps.map((s: { state: string }) => s.state)).toEqual(['done', 'done', 'done']);
  });
});
