// The api's replies as the tests read them, by method and URL: h.api('GET',
// `/migrations/${T}/status`) answers a RunStatus, typed from the route's own
// TypeBox schema (src/cli/replies.ts names the ones the CLI reads too), so a
// test that reads a field the api renamed or dropped fails the typecheck.
import type { Static } from '@sinclair/typebox';
import type { ErrorReply } from '../../src/api/schemas.js';
import type { RoutingProblem } from '../../src/runs/routing-preflight.js';
import type { Series } from '../../src/api/routes/migrations/run-reads.js';
import type { DefaultReply, OrgCreationReply, OrgReply, OverrideReply } from '../../src/api/routes/darklaunch.js';
import type {
  AccountView,
  AuditPage,
  OrgView,
  OrgsCaptured,
  OrgsMoved,
  OrgsPage,
  PhaseList,
  PhaseStart,
  PhaseView,
  RefreshQueued,
  RunFailures,
  RunHalted,
  RunList,
  RunResized,
  RunStarted,
  RunStatus,
  SettingsView,
  SurveyHalted,
  SurveyOrgsPage,
  SurveyStarted,
  SurveyView,
} from '../../src/cli/replies.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
/** The api's refusal (400, 401, 403, 404, 409): a short code and what is wrong; a run the routing preflight stopped names its problems beside. */
export type Refusal = Static<typeof ErrorReply> & { preflight?: RoutingProblem[] };
export type RunSeries = Static<typeof Series>;

/** A URL's query string, or none. */
type Q = '' | `?${string}`;
type RunMove = 'ready' | 'hold' | 'reset';

/** Method, URL pattern, reply; the first pattern a request fits gives its reply, so the narrower comes first. */
type Routes = [
  ['GET', `/account${Q}`, AccountView],
  ['POST', '/account/refresh', RefreshQueued],
  ['GET', `/audit${Q}`, AuditPage],
  ['GET', `/orgs/${string}`, OrgView],
  ['GET', `/phases${Q}`, PhaseList],
  ['POST', `/phases/${string}/steps/${string}/confirm`, PhaseView],
  ['POST', `/phases/${string}/start`, PhaseStart],
  ['GET', `/phases/${string}`, PhaseView],
  ['GET', `/settings${Q}`, SettingsView],
  ['PUT', `/settings/${string}`, SettingsView],
  ['GET', `/survey/orgs${Q}`, SurveyOrgsPage],
  ['GET', `/survey${Q}`, SurveyView],
  ['POST', '/survey/start', SurveyStarted],
  ['POST', '/survey/halt', SurveyHalted],
  ['GET' | 'PUT', '/darklaunch/default', Static<typeof DefaultReply>],
  ['GET' | 'PUT', '/darklaunch/org-creation', Static<typeof OrgCreationReply>],
  ['GET', '/darklaunch/override', Static<typeof OverrideReply>],
  ['GET', `/darklaunch/orgs/${string}`, Static<typeof OrgReply>],
  ['GET', `/migrations/${string}/status${Q}`, RunStatus],
  ['GET', `/migrations/${string}/runs${Q}`, RunList],
  ['GET', `/migrations/${string}/failures${Q}`, RunFailures],
  ['GET', `/migrations/${string}/series${Q}`, RunSeries],
  ['GET', `/migrations/${string}/orgs${Q}`, OrgsPage],
  ['POST', `/migrations/${string}/orgs`, OrgsCaptured],
  ['POST', `/migrations/${string}/${RunMove}`, OrgsMoved],
  ['POST', `/migrations/${string}/${'start' | 'retry'}`, RunStarted],
  ['POST', `/migrations/${string}/halt`, RunHalted],
  ['PUT', `/migrations/${string}/concurrency`, RunResized],
];

type Match<M, U, R> = R extends [[infer RM, infer RU, infer Body], ...infer Rest]
  ? M extends RM
    ? U extends RU
      ? Body
      : Match<M, U, Rest>
    : Match<M, U, Rest>
  : unknown;

/**
 * What h.api's body holds for a request: the route's reply, with the fields of
 * a refusal beside it, which a test reads once it has checked the status; a
 * URL no route above fits (a 404's, the docs') gives only those.
 */
export type ReplyTo<M extends Method, U extends string> = Match<M, U, Routes> & Partial<Refusal>;
