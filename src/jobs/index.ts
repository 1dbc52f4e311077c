// The job kinds the fleet runs, each in its own file named after its queue
// (snake_case, as BullMQ and Bull Board show it; every other file in src is
// kebab-case). A new kind is one file implementing JobKind (src/frame/kind.ts)
// and one line here; a new per-org migration type is a list of steps passed
// through perOrgKind (src/frame/per-org-kind.ts), as phase_2_migration is.
import type { JobKind, RunSpec } from '../frame/kind.js';
import { QUEUE_NAMES } from '../queue-names.js';
import { kind as accountRefresh } from './account_refresh.js';
import { kind as estateSurvey } from './estate_survey.js';
import { kind as phase2Migration } from './phase_2_migration.js';
import { kind as phase2MigrationPrep } from './phase_2_migration_prep.js';
import { kind as phase2Purge } from './phase_2_purge.js';
import { kind as phase2Revert } from './phase_2_revert.js';

const KINDS: JobKind[] = [phase2Migration, phase2MigrationPrep, phase2Revert, phase2Purge, accountRefresh, estateSurvey];

// Every queue the context makes has its kind here, and every kind its queue.
const kindTypes = KINDS.map((k) => k.type).sort();
if (kindTypes.join() !== [...QUEUE_NAMES].sort().join()) {
  throw new Error(`job kinds (${kindTypes.join(', ')}) and queue names (${QUEUE_NAMES.join(', ')}, src/queue-names.ts) differ`);
}

export const JOB_KINDS: Readonly<Record<string, JobKind>> = Object.fromEntries(KINDS.map((k) => [k.type, k]));

export type RunKind = JobKind & { run: RunSpec };
/** The kinds an operator starts as runs over orgs: the migration types of the API's `:type`. */
export const MIGRATION_TYPES: readonly string[] = KINDS.filter((k) => k.run).map((k) => k.type);

export function runKind(type: string): RunKind | undefined {
  const k = JOB_KINDS[type];
  return k?.run ? (k as RunKind) : undefined;
}
