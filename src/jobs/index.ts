// The job kinds the workers run, by queue name.
import type { OrgJobKind } from '../runs/org-job.js';
import { kind as phase2Migration } from './phase_2_migration.js';

/** Per-org kinds, by migration type. The prep kind joins in the phases issue. */
export const ORG_JOB_KINDS: Partial<Record<string, OrgJobKind>> = {
  [phase2Migration.type]: phase2Migration,
};
