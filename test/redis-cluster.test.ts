// The queue Redis as a Redis Cluster (3 masters, made here on free ports):
// the queue prefix carries a hash tag so each queue's keys share a slot, the
// fleet's global concurrency holds, and a migration goes through it; the
// darklaunch Redis stays a single server.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullPrefix } from '../src/config.js';
import { startPrivateRedisCluster } from '../dev/private-stores.js';
import { createHarness, expectedRows, sqlRows, waitForRunEnd, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';
let h: Harness;
let cluster: Awaited<ReturnType<typeof startPrivateRedisCluster>>;

beforeAll(async () => {
  cluster = await startPrivateRedisCluster(3);
  h = await createHarness('cluster', { redisUrl: cluster.url, redisCluster: true });
}, 60_000);
afterAll(async () => {
  await h?.close();
  await cluster?.stop();
});

describe('a Redis Cluster as the queue Redis', () => {
  it('runs a migration through it, with the concurrency held fleet-wide and every queue key in one slot', async () => {
    expect(bullPrefix(h.config)).toBe(`{${h.config.queuePrefix}}`);
    const orgs = await seedReady(
      h,
      Array.from({ length: 8 }, (_, i) => ({ name: `cl-org-${i}` })),
    );
    expect(orgs).toHaveLength(8);
    h.startWorkers({ concurrency: 4 });
    h.startWorkers({ concurrency: 4 });
    expect((await h.api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 2 })).status).toBe(202);
    expect(await h.ctx.queues[T].getGlobalConcurrency()).toBe(2);
    const end = await waitForRunEnd(h);
    expect(end).toMatchObject({ orgs_completed: 8, objects_failed: 0, state: 'completed' });
    for (const o of orgs) {
      expect(await sqlRows(h, o.guid)).toEqual(expectedRows(o));
      // Routed on the darklaunch Redis, a single server apart from the cluster.
      expect(await h.ctx.darklaunchRedis.hgetall(`dl_org_${o.name}`)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
    }
    // Never more orgs in flight than the concurrency: at each org's start, at most 2 orgs were between start and end.
    const { rows } = await h.ctx.db.query(
      `SELECT migration_start AS s, migration_end AS e FROM org_migration_state WHERE migration_type = $1 AND org_name LIKE 'cl-org-%'`,
      [T],
    );
    for (const r of rows) expect(rows.filter((x) => x.s <= r.s && x.e > r.s).length).toBeLessThanOrEqual(2);
    // Every key of the queue hashes to the one slot of its tag.
    const slots = new Set<string>();
    for (const port of cluster.ports) {
      const keys = spawnSync('redis-cli', ['-p', String(port), '--scan', '--pattern', `{${h.config.queuePrefix}}:*`], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean);
      for (const k of keys.slice(0, 20)) slots.add(spawnSync('redis-cli', ['-p', String(port), 'cluster', 'keyslot', k], { encoding: 'utf8' }).stdout.trim());
    }
    expect(slots.size).toBe(1);
  }, 90_000);
});
