// Orgs made ready for a run, as nearly every migration test begins: seeded
// into CouchDB, read into a new account snapshot, captured and readied
// (docs/domain.md has the org states).
import { expect } from 'vitest';
import type { Context } from '../../src/context.js';
import { readyHolding } from '../../src/db/state-tracker.js';
import type { OrgSpec, SeededOrg } from '../../dev/estate.js';
import * as accountRefresh from '../../src/jobs/account_refresh.js';
import { captureOrgs } from '../../src/migration/capture.js';

/** Where orgs are seeded and who then reads them: a Harness, or a test's own context and CouchDB. */
export interface Estate {
  ctx: Context;
  seed(specs: OrgSpec[]): Promise<SeededOrg[]>;
}

/**
 * Refreshes the account snapshot, captures the named orgs as holding and
 * readies them, failing unless every one was captured and readied. The refresh
 * is the refresh job's own step, run here: no worker needed, and the snapshot
 * is swapped in when it returns (refreshAccount in harness.ts goes through the
 * API and a worker, for a test of that). Capture and ready are what POST
 * .../orgs and .../ready do (src/api/routes/migrations/orgs.ts), without
 * their audit entries.
 */
export async function refreshCaptureReady(ctx: Context, names: string[], type = 'phase_2_migration'): Promise<void> {
  const sorted = [...names].sort();
  await accountRefresh.refreshAccounts(ctx);
  expect((await captureOrgs(ctx.db, type, names)).inserted.sort(), 'captured').toEqual(sorted);
  expect((await readyHolding(ctx.db, type, names)).sort(), 'readied').toEqual(sorted);
}

/** Seeds `specs` and makes every org of them ready (refreshCaptureReady); the seeded orgs. */
export async function seedReady(estate: Estate, specs: OrgSpec[], type = 'phase_2_migration'): Promise<SeededOrg[]> {
  const orgs = await estate.seed(specs);
  await refreshCaptureReady(
    estate.ctx,
    orgs.map((o) => o.name),
    type,
  );
  return orgs;
}
