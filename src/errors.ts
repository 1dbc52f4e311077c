// A job's fate is decided by the class of the error it hit, as in the legacy
// manager: a data error fails that org and the run goes on; an infrastructure
// (or unexpected) error halts the run fleet-wide.

/** Bad or missing data in one org: the org fails, the run continues. */
export class OrgDataError extends Error {
  readonly kind = 'data';
  constructor(message: string, readonly detail?: Record<string, unknown>) {
    super(message);
    this.name = 'OrgDataError';
  }
}

/** A store is unreachable or misbehaving: the fleet halts. */
export class InfrastructureError extends Error {
  readonly kind = 'infrastructure';
  constructor(message: string, readonly store: 'couchdb' | 'postgres' | 'redis' | 'darklaunch', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InfrastructureError';
  }
}

/** Anything not classified is treated as infrastructure: halting is the safe default. */
export function isDataError(err: unknown): err is OrgDataError {
  return err instanceof OrgDataError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An operator asked for something the current state does not allow (HTTP 409). */
export class ConflictError extends Error {
  readonly statusCode = 409;
  constructor(message: string, readonly code = 'conflict') {
    super(message);
    this.name = 'ConflictError';
  }
}

/** A request that validates by its schema but not by the rules (HTTP 400, naming the field first). */
export class BadRequestError extends Error {
  readonly statusCode = 400;
  constructor(message: string, readonly code = 'bad_request') {
    super(message);
    this.name = 'BadRequestError';
  }
}

/** The named thing does not exist (HTTP 404). */
export class NotFoundError extends Error {
  readonly statusCode = 404;
  constructor(message: string, readonly code = 'not_found') {
    super(message);
    this.name = 'NotFoundError';
  }
}
