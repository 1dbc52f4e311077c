// A job's fate is decided by the class of the error it hit, as in the legacy
// manager (docs/architecture.md, "Riding through store faults"): a data error
// fails that org and the run goes on; a refusal leaves the org as it was; an
// infrastructure (or unexpected) error opens the run's breaker, which pauses
// the run until the store answers again and then resumes it by itself.

/** An error about one org, not the fleet's stores: it decides that org's fate alone. */
export abstract class OrgError extends Error {
  abstract readonly errorClass: 'data' | 'refusal';
  constructor(
    message: string,
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad or missing data in one org: the org fails, the run continues. */
export class OrgDataError extends OrgError {
  readonly errorClass = 'data';
}

/**
 * The org is fine, but moving it would lose something (a revert of an org
 * changed on SQL, say): it is refused, put back where it was, and its run
 * goes on. Nothing failed, so no failure breaker counts it.
 */
export class OrgRefusal extends OrgError {
  readonly errorClass = 'refusal';
}

export const isRefusal = (err: unknown): err is OrgRefusal => err instanceof OrgRefusal;

/** A store is unreachable or misbehaving: the run's breaker opens until it answers again. */
export class InfrastructureError extends Error {
  readonly errorClass = 'infrastructure';
  constructor(
    message: string,
    readonly store: 'couchdb' | 'postgres' | 'redis' | 'darklaunch',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InfrastructureError';
  }
}

/**
 * A delivery (or reconciler pass) no longer holds its org: its lease was
 * taken by another after it lapsed, or the org moved on from the run and
 * generation it claimed. Raised when a store refuses one of its writes for
 * that (the fence, docs/architecture.md "Fencing") or when it finds so before
 * a step. It stops, touching nothing more: the org is whoever holds it now's.
 * The one lost-ownership error of every kind.
 */
export class OwnershipLostError extends Error {
  constructor(why: string) {
    super(`this delivery no longer owns the org: ${why}`);
    this.name = 'OwnershipLostError';
  }
}

/** PostgreSQL's answer to a write whose fence is stale (src/db/functions.sql). */
export const FENCE_SQLSTATE = 'MVF01';

/** An error from a fenced SQL statement refusing a stale holder, as the lost-ownership error; anything else as it is. */
export function fenceRefusal(err: unknown): unknown {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return code === FENCE_SQLSTATE ? new OwnershipLostError((err as Error).message) : err;
}

/** Bad data in one org (the org fails). A refusal is not a data error: isOrgError covers both. */
export function isDataError(err: unknown): err is OrgDataError {
  return err instanceof OrgDataError;
}

/** An error about this one org, its data or a refusal, not the fleet's stores; anything else counts as infrastructure, the safe default. */
export function isOrgError(err: unknown): err is OrgError {
  return err instanceof OrgError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// What an operator asked for cannot be done. Each class names its HTTP
// status, which the API's one error handler (src/api/plugins/errors.ts)
// answers with; `code` is the short machine-readable reason the reply carries.

export abstract class OperatorError extends Error {
  abstract readonly status: number;
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The current state does not allow it (a run already active, a step not waiting). */
export class StateConflictError extends OperatorError {
  readonly status = 409;
  constructor(message: string, code = 'conflict') {
    super(message, code);
  }
}

/** A run would take no org: refused (409 no_orgs), so that it never becomes the latest run shown. */
export class NoOrgsError extends StateConflictError {
  constructor(message: string) {
    super(message, 'no_orgs');
  }
}

/** Input that passes its schema but not the rules; the message names the field first. */
export class InvalidInputError extends OperatorError {
  readonly status = 400;
  constructor(message: string, code = 'bad_request') {
    super(message, code);
  }
}

/** The operator signed in may not do it as asked (a confirmation in another operator's name). */
export class ForbiddenError extends OperatorError {
  readonly status = 403;
  constructor(message: string, code = 'forbidden') {
    super(message, code);
  }
}

/** The named thing (org, phase, step, migration type) does not exist. */
export class NotFoundError extends OperatorError {
  readonly status = 404;
  constructor(message: string, code = 'not_found') {
    super(message, code);
  }
}
