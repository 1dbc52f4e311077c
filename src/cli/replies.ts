// The api's replies as the CLI reads them: the types of the routes' own
// TypeBox schemas (what docs/openapi.json describes), so a field the api
// renames or drops fails the CLI's build, not an operator's run.
import type { Static } from '@sinclair/typebox';
import type { Failures, Runs, Status } from '../api/routes/migrations/run-reads.js';
import type { Halted, Started } from '../api/routes/migrations/runs.js';
import type { Phase, PhaseStarted } from '../api/routes/phases.js';

export type RunStatus = Static<typeof Status>;
export type RunList = Static<typeof Runs>;
export type RunFailures = Static<typeof Failures>;
export type RunStarted = Static<typeof Started>;
export type RunHalted = Static<typeof Halted>;
export type PhaseView = Static<typeof Phase>;
export type PhaseStart = Static<typeof PhaseStarted>;
