// Schemas shared by several routes; each route keeps its own beside it.
import { Type } from '@sinclair/typebox';
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
export const OrgLines = {
  lines: Type.Optional(Json('text/plain bodies: each line with its org and result')),
  failed_lines: Type.Optional(Json('text/plain bodies: the lines whose org was not taken')),
};
