// Schemas shared by several routes; each route keeps its own beside it.
import { Type, type TNull, type TSchema, type TString, type TUnion } from '@sinclair/typebox';
import { NotFoundError } from '../errors.js';
import { kindOf } from '../runs/manager.js';

/**
 * Free text an operator sends that PostgreSQL stores: it cannot store NUL
 * (U+0000), so a string holding one is a 400 naming its field, never a 500
 * from the database.
 */
export const NO_NUL = '^[^\\u0000]*$';
export const Text = (opts: import('@sinclair/typebox').StringOptions = {}) => Type.String({ pattern: NO_NUL, ...opts });

export const OrgName = Text({ minLength: 1, maxLength: 255 });
export const OrgNames = Type.Array(OrgName, { minItems: 1, maxItems: 200_000 });
export const TypeParams = Type.Object({ type: Type.String() });
export const Concurrency = Type.Integer({ minimum: 1, maximum: 1000 });

/** `:type` must be a migration type this fleet knows; otherwise 404 (docs/api.md). */
export function migrationType(type: string): string {
  return kindOf(type).type;
}

/** `:type` of the orgs routes (capture, ready, hold, reset, list): a migration type whose orgs are rows of its own in Chef's table; otherwise 404. */
export function orgsType(type: string): string {
  const kind = kindOf(type);
  if (!kind.run.ownsOrgs)
    throw new NotFoundError(`${type} has no orgs of its own to capture, ready, hold, reset or list; it works on phase_2_migration's (or none)`, 'no_own_orgs');
  return kind.type;
}

// --- Replies: every route declares what it answers (OpenAPI at /docs; docs/openapi.json). ---

/** Any JSON value, serialized as it is (free-form details, dates as ISO strings). */
export const Json = (description: string) => Type.Unknown({ description });
/** An object with the named fields, and whatever else the reply carries beside them. */
export const Reply = <P extends Record<string, import('@sinclair/typebox').TSchema>>(props: P, description?: string) =>
  Type.Object(props, { additionalProperties: true, ...(description ? { description } : {}) });
export const ErrorReply = Type.Object(
  { error: Type.String({ description: 'a short code' }), message: Type.String({ description: 'what is wrong, naming the field' }) },
  { additionalProperties: true },
);
const ERRORS = {
  400: ErrorReply,
  401: ErrorReply,
  403: ErrorReply,
  404: ErrorReply,
  409: ErrorReply,
} as const;
/** The route's success reply and the errors every guarded route may answer. */
export function replies(ok: import('@sinclair/typebox').TSchema, code: 200 | 202 = 200): Record<number, import('@sinclair/typebox').TSchema> {
  return { [code]: ok, ...ERRORS };
}
/** A string, or null. */
export function Nullable<T extends TSchema = TString>(description?: string, of?: T): TUnion<[T, TNull]> {
  return Type.Union([(of ?? Type.String()) as T, Type.Null()], description ? { description } : {});
}
/** A time as an ISO date-time string, or null (handlers hand it over as a string). */
export const Time = (description = 'ISO date-time, or null') => Nullable(description);
/** Where the next page starts, or null on the last page. */
export const NextCursor = (what: string) => Nullable(`${what}, to pass as cursor; null on the last page`);
/** An object whose keys and values vary by what it reports (a step's detail, a phase's start body, an audit entry's detail). */
export const Detail = (description: string) => Type.Record(Type.String(), Type.Unknown(), { description });
const Line = Type.Object({
  line: Type.Integer(),
  org: Type.String(),
  result: Type.String({ description: 'inserted, duplicate, unknown, updated, or skipped with why' }),
});
export const OrgLines = {
  lines: Type.Optional(Type.Array(Line, { description: 'text/plain bodies: each line that was not blank, with its org (or comment) and result' })),
  failed_lines: Type.Optional(Type.Array(Line, { description: 'text/plain bodies: the lines whose org was not taken' })),
};

const Count = (description?: string) => Nullable(description, Type.Number());
/** One org as the estate survey found it (src/db/survey.ts): GET /survey/orgs, /survey's largest, and GET /orgs/:name. */
export const SurveyedOrg = Type.Object({
  org_name: Type.String(),
  org_id: Type.String(),
  migration_state: Nullable('its state in phase_2_migration, or null when not captured'),
  containers: Count(),
  groups: Count(),
  documents: Count(),
  bytes: Count('the size of its chef_<guid> database'),
  copy_ms: Count('how long reading it took'),
  served_from: Nullable('couchdb, sql or split: what Chef does with its containers and groups; null where a key Chef reads is not a hash'),
  sql_rows: Type.Number(),
  foreign_rows: Type.Number({ description: 'rows in SQL mover did not write' }),
  refusal: Nullable("why the migration's preflight would refuse it"),
  findings: Type.Array(Type.String()),
  detail: Detail('per finding: what was found'),
  surveyed_at: Type.String(),
});
