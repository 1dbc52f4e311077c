// The api's replies as the CLI reads them: the types of the routes' own
// TypeBox schemas (what docs/openapi.json describes), so a field the api
// renames or drops fails the CLI's build, not an operator's run.
import type { Static } from '@sinclair/typebox';
import type { Failures, Runs, Status } from '../api/routes/migrations/run-reads.js';
import type { Halted, Resized, Started } from '../api/routes/migrations/runs.js';
import type { Phase, Phases, PhaseStarted } from '../api/routes/phases.js';
import type { Account, Refreshing } from '../api/routes/account.js';
import type { Entries } from '../api/routes/audit.js';
import type { Org } from '../api/routes/orgs.js';
import type { Shown } from '../api/routes/settings.js';
import type { Halted as SurveyHalt, Started as SurveyStart, SurveyPage, SurveyStatus } from '../api/routes/survey.js';
import type { Captured, Moved, Page } from '../api/routes/migrations/orgs.js';

export type RunStatus = Static<typeof Status>;
export type RunList = Static<typeof Runs>;
export type RunFailures = Static<typeof Failures>;
export type RunStarted = Static<typeof Started>;
export type RunHalted = Static<typeof Halted>;
export type RunResized = Static<typeof Resized>;
export type PhaseView = Static<typeof Phase>;
export type PhaseList = Static<typeof Phases>;
export type PhaseStart = Static<typeof PhaseStarted>;
export type AccountView = Static<typeof Account>;
export type RefreshQueued = Static<typeof Refreshing>;
export type AuditPage = Static<typeof Entries>;
export type OrgView = Static<typeof Org>;
export type SettingsView = Static<typeof Shown>;
export type SurveyView = Static<typeof SurveyStatus>;
export type SurveyOrgsPage = Static<typeof SurveyPage>;
export type SurveyStarted = Static<typeof SurveyStart>;
export type SurveyHalted = Static<typeof SurveyHalt>;
export type OrgsCaptured = Static<typeof Captured>;
export type OrgsMoved = Static<typeof Moved>;
export type OrgsPage = Static<typeof Page>;
