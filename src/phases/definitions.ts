// The runbook (docs/domain.md, "The runbook") as four phases. Step ids
// follow the runbook's numbering; manual steps carry the runbook's command.
import { captureOrgs } from '../migration/capture.js';
import { getSettings } from '../db/settings.js';
import { readyHolding } from '../db/state-tracker.js';
import { orgsIn } from '../db/org-states.js';
import { orgsWithSqlRows } from '../db/org-objects.js';
import type { Context } from '../context.js';
import { routingPreflight, unpinnedOrgs } from '../runs/routing-preflight.js';
import { keyTypeEffect } from '../chef-routing.js';
import { setSleepTime } from '../runs/manager.js';
import { refreshAndWait, runAndWait } from './run-step.js';
import type { PhaseDef, StepAction } from './types.js';

import { PHASE_2_MIGRATION as T, PHASE_2_MIGRATION_PREP, PHASE_2_PURGE } from '../queue-names.js';

// The account refresh runs as its own job (src/jobs/account_refresh.ts): minutes at 200,000 orgs, never inside the driver's tick.
const refresh: StepAction = (ctx, _phase, step) => refreshAndWait(ctx, step);

/**
 * Before dl_default flips to SQL, every org still to migrate (holding, ready)
 * must be pinned to CouchDB by flags of its own, or the flip serves it from
 * SQL, where its data is not. The prep pass pinned the ones it captured; an
 * org captured otherwise (phase 1, by hand) is pinned here. Which ones need it
 * is Chef's rule applied to the hashes as they will stand after the flip
 * (unpinnedOrgs). One whose containers or groups are in SQL already is left
 * unpinned (served from SQL, where its data is; phase 3's preflight fails it,
 * untouched) and listed; so is one whose dl_org_<org> is not a hash (Chef
 * answers 500 for it; nothing can be written to it).
 */
async function pinOrgsStillToMigrate(ctx: Context): Promise<{ pinned_now: number; left_on_sql: string[]; not_hashes: string[] }> {
  const todo = await orgsIn(ctx.db, T, ['holding', 'ready']);
  const { unpinned, notHashes } = await unpinnedOrgs(
    ctx,
    todo.map((o) => o.name),
  );
  const unpinnedSet = new Set(unpinned);
  const orgs = todo.filter((o) => unpinnedSet.has(o.name));
  const onSql = await orgsWithSqlRows(
    ctx.db,
    orgs.map((o) => o.guid),
  );
  const pin = orgs.filter((o) => !onSql.has(o.guid));
  const kept = new Set(await ctx.darklaunch.pinOrgsToCouch(pin.map((o) => o.name)));
  const log = ctx.log.child({ migration_type: T, step: '2.6' });
  for (const name of kept) log.warn({ org_name: name }, 'org got a routing field of its own since it was read; its flags were left as they were');
  for (const o of pin) log.warn({ org_name: o.name }, 'org still to migrate would be served from SQL after the flip; pinned to CouchDB by its own flags');
  const left_on_sql = orgs.filter((o) => onSql.has(o.guid)).map((o) => o.name);
  for (const name of left_on_sql)
    log.warn({ org_name: name }, 'org still to migrate has containers/groups in SQL already; not pinned: served from SQL after the flip');
  for (const p of notHashes)
    log.error({ org_name: p.key.slice('dl_org_'.length), key: p.key, type: p.type }, `${keyTypeEffect(p)}; not pinned: no flag can be written to it`);
  return { pinned_now: pin.length, left_on_sql: left_on_sql.slice(0, 200), not_hashes: notHashes.slice(0, 200).map((p) => `${p.key} (${p.type})`) };
}

/** The run's concurrency: the start's, else the one the migration queue has now (8 if it never had one): a phase changes it only when told. */
async function concurrencyOf(ctx: Context, params: Record<string, unknown>): Promise<number> {
  if (typeof params.concurrency === 'number') return params.concurrency;
  return (await ctx.queues[T].getGlobalConcurrency()) ?? 8;
}

export const PHASES: PhaseDef[] = [
  {
    n: 1,
    title: 'Migrate selected orgs',
    again:
      'it would refresh the account snapshot, capture the listed orgs (ones already captured are left as they are and reported as duplicates) and migrate every ready org',
    steps: [
      { id: '1.1', title: 'Refresh the account snapshot', mode: 'auto', action: refresh },
      {
        id: '1.2',
        title: 'Capture the listed orgs as holding',
        mode: 'auto',
        action: async (ctx, phase) => {
          const { inserted, duplicate, unknown, precreated } = await captureOrgs(ctx.db, T, (phase.params.orgs as string[]) ?? []);
          return { state: 'done', detail: { inserted: inserted.length, duplicate, unknown, precreated } };
        },
      },
      {
        id: '1.3',
        title: 'Move the captured orgs from holding to ready',
        mode: 'auto',
        action: async (ctx, phase) => ({ state: 'done', detail: { readied: (await readyHolding(ctx.db, T, phase.params.orgs as string[])).length } }),
      },
      // dl_default must still route orgs without flags of their own to CouchDB.
      {
        id: '1.4',
        title: 'Migrate all ready orgs',
        mode: 'auto',
        action: async (ctx, phase, step) => runAndWait(ctx, step, T, await concurrencyOf(ctx, phase.params), 'couchdb'),
      },
    ],
  },
  {
    n: 2,
    title: 'Route new orgs to SQL, pin existing orgs to CouchDB',
    again:
      'it would wait for the org creator to be stopped again (step 2.1), disable org creation, capture and pin every org not captured yet, set dl_default to SQL again, and wait for org creation to be re-enabled',
    steps: [
      { id: '2.1', title: 'Stop the org creator', mode: 'manual', command: "knife ssh role:opscode-account 'sudo /etc/init.d/opscode-org-creator stop'" },
      {
        id: '2.2',
        title: 'Disable org creation (darklaunch)',
        mode: 'auto',
        action: async (ctx) => {
          await ctx.darklaunch.setOrgCreation(false);
          return { state: 'done', detail: { disable_new_orgs: true, dry_run: ctx.darklaunch.dryRun } };
        },
      },
      {
        id: '2.3',
        title: 'Delete pre-created orgs',
        mode: 'manual',
        command:
          "knife ssh role:opscode-support 'cd /srv/opscode-platform-debug/current/orgmapper && sudo /srv/opscode-platform-debug/current/orgmapper/scripts/delete-pre-created-orgs.rb /etc/chef/orgmapper.conf all'",
      },
      { id: '2.4', title: 'Refresh the account snapshot', mode: 'auto', action: refresh },
      {
        id: '2.5',
        title: 'Prep pass: capture every other org as holding and pin it to CouchDB (no pacing)',
        mode: 'auto',
        action: async (ctx, _phase, step) => {
          // The pacing before the pass is kept in the step, so it is restored even after a restart.
          const previousMs = step.detail.previous_sleep_time_ms as number | undefined;
          if (previousMs === undefined) {
            const previous = (await getSettings(ctx.db)).sleepTimeMs;
            await setSleepTime(ctx, 0);
            return { state: 'running', detail: { previous_sleep_time_ms: previous } };
          }
          const restore = () => setSleepTime(ctx, previousMs);
          let result;
          try {
            result = await runAndWait(ctx, step, PHASE_2_MIGRATION_PREP, 4);
          } catch (err) {
            await restore(); // whatever happened
            throw err;
          }
          if (result.state !== 'running') {
            await restore();
            result.detail = { ...result.detail, sleep_time_restored_ms: previousMs };
          }
          return result;
        },
      },
      {
        id: '2.6',
        title: 'Route orgs without their own flags to SQL (dl_default)',
        mode: 'auto',
        action: async (ctx) => {
          await routingPreflight(ctx, 'any');
          const pins = ctx.darklaunch.dryRun ? { pinned_now: 0, left_on_sql: [], not_hashes: [] } : await pinOrgsStillToMigrate(ctx);
          await ctx.darklaunch.setDefault({ couchdb_containers: false, couchdb_groups: false });
          return { state: 'done', detail: { couchdb_containers: false, couchdb_groups: false, ...pins, dry_run: ctx.darklaunch.dryRun } };
        },
      },
      { id: '2.7', title: 'Start the org creator', mode: 'manual', command: "knife ssh role:opscode-account 'sudo /etc/init.d/opscode-org-creator start'" },
      {
        id: '2.8',
        title: 'Re-enable org creation once enough orgs exist (confirm; the darklaunch flip is automated)',
        mode: 'manual',
        command: 'mover_org_darklaunch:enable_org_creation(). — confirm this step and the fleet flips it',
        action: async (ctx) => {
          await ctx.darklaunch.setOrgCreation(true);
          return { state: 'done', detail: { disable_new_orgs: false, dry_run: ctx.darklaunch.dryRun } };
        },
      },
    ],
  },
  {
    n: 3,
    title: 'Migrate the rest',
    again:
      'it would move every holding org to ready and start a migration run over the ready orgs (with none ready, the step ends at once and no run is made); the sleep time changes only if the body names sleep_time_ms',
    steps: [
      {
        id: '3.1',
        title: 'Set the pacing (sleep time), if the start named one',
        mode: 'auto',
        // Only a sleep time the operator gave changes the setting; without one the current pacing stands, and the step says so.
        action: async (ctx, phase) => {
          const given = phase.params.sleep_time_ms;
          const before = (await getSettings(ctx.db)).sleepTimeMs;
          if (typeof given !== 'number') return { state: 'done', detail: { sleep_time_ms: before, changed: false } };
          await setSleepTime(ctx, given);
          return { state: 'done', detail: { sleep_time_ms: given, previous_sleep_time_ms: before, changed: given !== before } };
        },
      },
      {
        id: '3.2',
        title: 'Move all holding orgs to ready',
        mode: 'auto',
        action: async (ctx) => ({ state: 'done', detail: { readied: (await readyHolding(ctx.db, T)).length } }),
      },
      // dl_default routes orgs without flags of their own to SQL since step 2.6.
      {
        id: '3.3',
        title: 'Migrate all ready orgs',
        mode: 'auto',
        action: async (ctx, phase, step) => runAndWait(ctx, step, T, await concurrencyOf(ctx, phase.params), 'sql'),
      },
    ],
  },
  {
    n: 4,
    title: 'Clean up: re-verify completed orgs, then purge their migrated CouchDB documents',
    again: 'it would re-verify every completed org and, unless dry_run is true, delete its migrated documents from CouchDB',
    steps: [
      {
        id: '4.1',
        title: 'Re-verify each completed org against CouchDB and purge its migrated container and group documents',
        mode: 'auto',
        // A run of src/jobs/phase_2_purge.ts; a dry run purges nothing and reports what it would.
        action: (ctx, phase, step) => runAndWait(ctx, step, PHASE_2_PURGE, 4, 'any', { dry_run: phase.params.dry_run === true }),
      },
    ],
  },
];

export const phaseDef = (n: number) => PHASES.find((p) => p.n === n);
