// The queues the fleet has, one per job kind, named after the kind (its file
// in src/jobs and its migration_type). A leaf: the context makes one queue per
// name, and the registry (src/jobs/index.ts) checks at load that its kinds
// are exactly these, so a queue and its kind cannot drift apart.
export const PHASE_2_MIGRATION = 'phase_2_migration';
export const PHASE_2_MIGRATION_PREP = 'phase_2_migration_prep';
export const PHASE_2_REVERT = 'phase_2_revert';
export const PHASE_2_PURGE = 'phase_2_purge';
export const ACCOUNT_REFRESH = 'account_refresh';
/** The read-only estate survey (src/jobs/estate_survey.ts): a run like the others, writing only its own results. */
export const ESTATE_SURVEY = 'estate_survey';

export const QUEUE_NAMES = [PHASE_2_MIGRATION, PHASE_2_MIGRATION_PREP, PHASE_2_REVERT, PHASE_2_PURGE, ACCOUNT_REFRESH, ESTATE_SURVEY] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];
