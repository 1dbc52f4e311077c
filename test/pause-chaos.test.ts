// Random pauses of real worker processes and the api (SIGSTOP, then SIGCONT
// 0.5 to 4 leases later, some past the job lock so BullMQ hands their jobs to
// another worker), during a run, while Chef keeps writing to the orgs
// (dev/chef-writer.ts). Afterwards: no acknowledged write lost, no org
// routed to SQL unless completed, none started or dark, none dark longer than
// the drain wait and two leases after the last pause that could explain it,
// and every process still running. The workers run at UTC+05:30, and what
// they wrote to Chef's tables is UTC (docs/architecture.md, "Fencing"; the
// seed of a failing run is in its message).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChefWriter } from '../dev/chef-writer.js';
import { DarkWatch, PauseChaos, seeded } from '../dev/pause-chaos.js';
import { getOrgState } from '../src/db/org-states.js';
import { getRun } from '../src/db/runs.js';
import { setSetting } from '../src/db/settings.js';
import type { SeededOrg } from '../dev/estate.js';
import { orgLeaseMs } from '../src/frame/org-lease.js';
import { startRun } from '../src/runs/manager.js';
import { fleetProcesses, until } from './support/fleet-processes.js';
import { COUCH_KINDS, createHarness, expectedRows, REAL_COUCH, sqlRows, type Harness } from './support/harness.js';
import { seedReady } from './support/seed-ready.js';

const T = 'phase_2_migration';
const ORGS = 120;
const JOB_LOCK_MS = 6000;
const LEASE_MS = orgLeaseMs(JOB_LOCK_MS);
const DRAIN_MS = 400;
const CHAOS_MS = 15_000;

for (const [label, couch] of COUCH_KINDS.filter(([, k]) => k !== 'couch1')) {
  const skip = couch === 'couchdb' && REAL_COUCH.kind === 'none';
  (skip ? describe.skip : describe)(
    `random pauses of workers and the api on ${label}${REAL_COUCH.kind === 'none' && skip ? ` (skipped: ${REAL_COUCH.why})` : ''}`,
    () => {
      let h: Harness;
      let orgs: SeededOrg[];
      // Their whole output is kept: a failure names what each process said of the org that broke a rule.
      const procs = fleetProcesses(() => h.config, 5_000_000);

      beforeAll(async () => {
        h = await createHarness(`chaos-${couch}`, { jobLockMs: JOB_LOCK_MS, storeOutageGraceMs: 30_000 }, { couch });
        await setSetting(h.ctx.db, 'drainWaitMs', DRAIN_MS);
        orgs = await seedReady(
          h,
          Array.from({ length: ORGS }, (_, i) => ({ name: `chaos-${couch}-${String(i).padStart(3, '0')}` })),
        );
        // The fleet runs where the clock says UTC+05:30: what it writes to Chef's tables must be UTC all the same.
        const env = { JOB_LOCK_MS: String(JOB_LOCK_MS), TZ: 'Asia/Kolkata', LOG_LEVEL: 'info' };
        for (const n of [1, 2, 3]) procs.spawn(`worker-${n}`, 'src/workers/worker.ts', env);
        procs.spawn('api', 'src/api/server.ts', { ...env, PORT: '0' });
      }, 120_000);
      afterAll(async () => {
        procs.killAll();
        await h?.close();
      });

      it('loses no acknowledged write, routes no org to SQL unless completed, leaves none stuck or dark', async () => {
        const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
        const random = seeded(seed);
        const why = (s: string, org?: string) =>
          `${s} (CHAOS_SEED=${seed})\n${
            org
              ? [
                  `dark: ${JSON.stringify(dark.intervals.get(org))}`,
                  `pauses: ${JSON.stringify(chaos.pauses)}`,
                  ...procs.list.map(
                    (p) =>
                      `--- ${p.name}\n${p
                        .log()
                        .split('\n')
                        .filter((l) => l.includes(org))
                        .join('\n')}`,
                  ),
                ].join('\n')
              : procs.logs(2000)
          }`;
        const chef = new ChefWriter({ redis: h.ctx.darklaunchRedis, db: h.ctx.db, couchUrl: h.couchdb.url, accountDb: h.couchdb.accountDb }, DRAIN_MS / 2);
        const dark = new DarkWatch(
          h.ctx.darklaunchRedis,
          orgs.map((o) => o.name),
        );
        const chaos = new PauseChaos(() => procs.list, {
          minMs: LEASE_MS / 2,
          maxMs: 4 * LEASE_MS,
          gapMs: 1200,
          random,
          long: { every: 3, minMs: JOB_LOCK_MS + 500 },
        });
        const { run } = await startRun(h.ctx, T, { count: 'all', concurrency: 12 });
        dark.start();
        // Two clients, a write every 100 ms each: every org is written to while it moves. Faster, each write's AuthJoin
        // grows opscode_account until PouchDB Server's live look-ups of them (src/migration/authz.ts) take most of its CPU.
        const stopWriting = chef.writeOn(orgs, random, 2, 100);
        chaos.start();
        await sleep(CHAOS_MS);
        await chaos.stop();
        const end = await until(
          'the run to end',
          async () => {
            const r = await getRun(h.ctx.db, run.id);
            return r?.state === 'ready' ? r : null;
          },
          procs,
          180_000,
        );
        // Chef writes on a little, to orgs where they now are, then stops.
        await sleep(500);
        await stopWriting();
        await dark.stop();

        expect(chaos.pauses.length, why('no pause was made')).toBeGreaterThan(5);
        expect(
          chaos.pauses.some((p) => p.to - p.from > JOB_LOCK_MS),
          why('no pause outlasted the job lock'),
        ).toBe(true);
        expect(await chef.lost(), why('acknowledged writes lost')).toEqual([]);
        expect(chef.acked.length, why('Chef acknowledged nothing')).toBeGreaterThan(30);
        expect({ finished: end.orgs_finished, skipped: end.orgs_skipped }, why('run counts')).toEqual({ finished: ORGS, skipped: 0 });
        for (const org of orgs) {
          const state = (await getOrgState(h.ctx.db, T, org.name))?.state;
          const flags = await h.ctx.darklaunchRedis.hgetall(`dl_org_${org.name}`);
          if (state === 'completed') {
            expect(flags, why(org.name)).toEqual({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
            const rows = await sqlRows(h, org.guid);
            expect(rows.groups, why(org.name)).toEqual(expectedRows(org).groups);
            for (const c of expectedRows(org).containers) expect(rows.containers, why(org.name)).toContainEqual(c);
          } else {
            // Failed (on its data: writes that kept landing): put back on CouchDB, up, nothing of it in SQL.
            expect(state, why(org.name)).toBe('failed');
            expect(flags, why(org.name)).toMatchObject({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
            expect(await sqlRows(h, org.guid), why(org.name)).toEqual({ containers: [], groups: [] });
          }
        }
        expect(dark.darkNow, why('orgs dark at the end')).toEqual([]);
        const worst = dark.worstAfterPauses(chaos.pauses);
        // Past the last pause that caught it dark, an org is up within the drain wait, two leases (one to lapse, one to
        // take) and the machine's own delay (2 s: this file shares two cores with another test file, a PouchDB Server and four processes).
        expect(worst?.ms ?? 0, why(`${worst?.org} dark ${worst?.ms} ms after the last pause`, worst?.org)).toBeLessThanOrEqual(DRAIN_MS + 2 * LEASE_MS + 2000);
        // At UTC+05:30 the workers wrote Chef's created_at as UTC: within minutes of the database's UTC clock, not 5 h 30 min off.
        const { rows: skew } = await h.ctx.db.query(
          `SELECT max(abs(extract(epoch FROM (created_at - (now() AT TIME ZONE 'utc')))))::float8 AS s FROM containers WHERE org_id = ANY($1::bpchar[])`,
          [orgs.map((o) => o.guid)],
        );
        expect(skew[0].s, why('created_at written 5 h 30 min off UTC')).toBeLessThan(600);
        for (const p of procs.list)
          expect({ name: p.name, exit: p.child.exitCode, signal: p.child.signalCode }).toEqual({ name: p.name, exit: null, signal: null });
      }, 300_000);
    },
  );
}
