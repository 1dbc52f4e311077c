// The job kinds the fleet runs, each in its own file named after its queue
// (snake_case, as BullMQ and Bull Board show it; every other file in src is
// kebab-case). A new kind is one file implementing JobKind (src/jobs/kind.ts)
// and one line here; a new per-org migration type is a list of steps passed
// through perOrgKind (src/runs/per-org-kind.ts), as phase_2_migration is.
import type { JobKind, RunSpec } from './kind.js';
import { kind as accountRefresh } from './account_refresh.js';
import { kind as phase2Migration } from './phase_2_migration.js';
import { kind as phase2MigrationPrep } from './phase_2_migration_prep.js';
import { kind as phase2Revert } from './phase_2_revert.js';

const KINDS: JobKind[] = [phase2Migration, phase2MigrationPrep, phase2Revert, accountRefresh];

export const JOB_KINDS: Readonly<Record<string, JobKind>> = Object.fromEntries(KINDS.map((k) => [k.type, k]));
export const QUEUE_NAMES: readonly string[] = KINDS.map((k) => k.type);

export type RunKind = JobKind & { run: RunSpec };
/** The kinds an operator starts as runs over orgs: the migration types of the API's `:type`. */
export const MIGRATION_TYPES: readonly string[] = KINDS.filter((k) => k.run).map((k) => k.type);

export function runKind(type: string): RunKind | undefined {
  const k = JOB_KINDS[type];
  return k?.run ? (k as RunKind) : undefined;
}
