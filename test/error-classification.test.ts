// Pure rules, no stores: which store failures fail one org (OrgDataError) and
// which open the run's breaker (InfrastructureError); refusals and operator errors.
import { describe, expect, it } from 'vitest';
import {
  errorMessage,
  InfrastructureError,
  isDataError,
  isOrgError,
  NoOrgsError,
  NotFoundError,
  OperatorError,
  OrgDataError,
  OrgRefusal,
  StateConflictError,
} from '../src/errors.js';
import { couchCall, couchError } from '../src/stores/couch-errors.js';
import { classifyPgError } from '../src/stores/postgres.js';

/** An error shaped as pg's DatabaseError: a message and a SQLSTATE in `code`. */
function pgError(code: string, message = `pg error ${code}`): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

/** An error shaped as nano 11 rejects with for a non-2xx answer: CouchDB's JSON body is copied onto it. */
function nanoError(statusCode: number, body: { error?: string; reason?: string } = {}): Error {
  const message = body.reason ?? body.error ?? `couch returned ${statusCode}`;
  return Object.assign(new Error(message), { scope: 'couch', statusCode, errid: 'non_200', description: message, ...body });
}

/** What nano 11 rejects with when the connection itself fails: no statusCode. */
function nanoConnectionError(reason = 'TypeError: fetch failed'): Error {
  return new Error(`error happened in your connection. Reason: ${reason}`);
}

function expectData(err: Error, message: string, detail: Record<string, unknown>) {
  expect(err).toBeInstanceOf(OrgDataError);
  expect(err).not.toBeInstanceOf(InfrastructureError);
  const e = err as OrgDataError;
  expect(e.message).toBe(message);
  expect(e.detail).toEqual(detail);
  expect(e.errorClass).toBe('data');
  expect(e.name).toBe('OrgDataError');
  expect(isDataError(e)).toBe(true);
}

function expectInfra(err: Error, message: string, store: InfrastructureError['store'], cause: unknown) {
  expect(err).toBeInstanceOf(InfrastructureError);
  expect(err).not.toBeInstanceOf(OrgDataError);
  const e = err as InfrastructureError;
  expect(e.message).toBe(message);
  expect(e.store).toBe(store);
  expect(e.cause).toBe(cause);
  expect(e.errorClass).toBe('infrastructure');
  expect(e.name).toBe('InfrastructureError');
  expect(isDataError(e)).toBe(false);
}

describe('classifyPgError', () => {
  it('makes an integrity violation (SQLSTATE class 23) a data error carrying the sqlstate', () => {
    for (const code of ['23505', '23503', '23502', '23514', '23P01', '23000']) {
      const err = pgError(code, `violation ${code}`);
      expectData(classifyPgError(err, 'write containers and groups'), `write containers and groups: violation ${code}`, { sqlstate: code });
    }
  });

  it('makes a data exception (SQLSTATE class 22) a data error carrying the sqlstate', () => {
    for (const code of ['22001', '22P02', '22021', '22003', '22007', '22000']) {
      const err = pgError(code, `bad data ${code}`);
      expectData(classifyPgError(err, 'verify read'), `verify read: bad data ${code}`, { sqlstate: code });
    }
  });

  it('makes every other SQLSTATE an infrastructure error of postgres, keeping the cause', () => {
    for (const code of ['08006', '08001', '40001', '40P01', '57P01', '57014', '53300', '42P01', '42703', '25P02', '2', '']) {
      const err = pgError(code, `server said ${code}`);
      expectInfra(classifyPgError(err, 'preflight read'), `preflight read: server said ${code}`, 'postgres', err);
    }
  });

  it('makes a Node socket error (ECONNREFUSED, ECONNRESET) an infrastructure error', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']) {
      const err = Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
      expectInfra(classifyPgError(err, 'prep read'), `prep read: connect ${code} 127.0.0.1:5432`, 'postgres', err);
    }
  });

  it('makes an error without a code an infrastructure error', () => {
    const err = new Error('Connection terminated unexpectedly');
    expectInfra(classifyPgError(err, 'read authz ids'), 'read authz ids: Connection terminated unexpectedly', 'postgres', err);
  });

  it('looks only at a string code: a numeric 23505 is infrastructure', () => {
    const err = Object.assign(new Error('numeric code'), { code: 23505 });
    expectInfra(classifyPgError(err, 'x'), 'x: numeric code', 'postgres', err);
  });

  it('wraps a thrown non-Error by its string form', () => {
    expectInfra(classifyPgError('boom', 'x'), 'x: boom', 'postgres', 'boom');
    const obj = { code: '08006' };
    expectInfra(classifyPgError(obj, 'x'), 'x: [object Object]', 'postgres', obj);
  });

  it('classifies a non-Error object with a class 23 code as data, its message undefined', () => {
    // Current behaviour: the message is read off the object without a fallback.
    expectData(classifyPgError({ code: '23505' }, 'x'), 'x: undefined', { sqlstate: '23505' });
  });

  it('passes an error that is already classified through unchanged', () => {
    const data = new OrgDataError('already data', { foo: 1 });
    expect(classifyPgError(data, 'x')).toBe(data);
    expect(data.message).toBe('already data');
    const infra = new InfrastructureError('couch is down', 'couchdb');
    expect(classifyPgError(infra, 'x')).toBe(infra);
    expect(infra.store).toBe('couchdb');
    expect(infra.message).toBe('couch is down');
  });

  it('makes null or undefined an infrastructure error rather than crashing', () => {
    for (const v of [undefined, null]) {
      const e = classifyPgError(v, 'x');
      expect(e).toBeInstanceOf(InfrastructureError);
      expect(e.message).toBe(`x: ${String(v)}`);
    }
  });
});

describe('couchError', () => {
  it('makes a 404 a data error (the org database is missing), whatever CouchDB said', () => {
    for (const body of [{ error: 'not_found', reason: 'Database does not exist.' }, { error: 'not_found', reason: 'missing' }, {}]) {
      expectData(couchError(nanoError(404, body), 'read chef_abc'), 'read chef_abc: not found in CouchDB', { statusCode: 404 });
    }
  });

  it('makes other 4xx answers data errors naming the status and CouchDB error', () => {
    const cases: [number, string][] = [
      [400, 'bad_request'],
      [405, 'method_not_allowed'],
      [409, 'conflict'],
      [412, 'file_exists'],
      [413, 'too_large'],
      [415, 'bad_content_type'],
      [417, 'expectation_failed'],
    ];
    for (const [status, error] of cases) {
      const err = nanoError(status, { error, reason: 'why' });
      expectData(couchError(err, 'write back to chef_abc'), `write back to chef_abc: CouchDB answered ${status} ${error}`, { statusCode: status });
    }
  });

  it('leaves no trailing space when a 4xx carries no error field', () => {
    const err = Object.assign(new Error('couch returned 400'), { statusCode: 400 });
    expectData(couchError(err, 'read chef_abc'), 'read chef_abc: CouchDB answered 400', { statusCode: 400 });
  });

  it('makes 401, 403, 408 and 429 infrastructure errors (credentials, a timeout or rate, not the org)', () => {
    const cases: [number, { error: string; reason: string }][] = [
      [408, { error: 'timeout', reason: 'The request could not be processed in a reasonable amount of time.' }],
      [401, { error: 'unauthorized', reason: 'Name or password is incorrect.' }],
      [403, { error: 'forbidden', reason: 'You are not allowed to access this db.' }],
      [429, { error: 'too_many_requests', reason: 'Slow down.' }],
    ];
    for (const [status, body] of cases) {
      const err = nanoError(status, body);
      expectInfra(couchError(err, 'read chef_abc'), `read chef_abc: ${body.reason}`, 'couchdb', err);
    }
  });

  it('makes 5xx answers infrastructure errors', () => {
    for (const status of [500, 502, 503, 504]) {
      const err = nanoError(status, { error: 'unknown_error', reason: `down ${status}` });
      expectInfra(couchError(err, 'changes of chef_abc'), `changes of chef_abc: down ${status}`, 'couchdb', err);
    }
    const bare = nanoError(500);
    expectInfra(couchError(bare, 'x'), 'x: couch returned 500', 'couchdb', bare);
  });

  it('makes a failed connection (no statusCode) an infrastructure error', () => {
    const err = nanoConnectionError('TypeError: fetch failed');
    expectInfra(couchError(err, 'server info'), 'server info: error happened in your connection. Reason: TypeError: fetch failed', 'couchdb', err);
  });

  it('makes Node socket errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT) infrastructure errors', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND']) {
      const err = Object.assign(new Error(`connect ${code} 127.0.0.1:5984`), { code, errno: -111, syscall: 'connect' });
      expectInfra(couchError(err, 'read chef_abc'), `read chef_abc: connect ${code} 127.0.0.1:5984`, 'couchdb', err);
    }
  });

  it('makes a statusCode of 0, or a 2xx/3xx carried on an error, infrastructure', () => {
    for (const status of [0, 200, 304]) {
      const err = Object.assign(new Error(`odd ${status}`), { statusCode: status });
      expectInfra(couchError(err, 'x'), `x: odd ${status}`, 'couchdb', err);
    }
  });

  it('wraps a thrown non-Error by its string form', () => {
    expectInfra(couchError('boom', 'x'), 'x: boom', 'couchdb', 'boom');
  });

  it('re-wraps an error that is already classified, unlike classifyPgError', () => {
    // Current behaviour: no pass-through; an OrgDataError without a statusCode becomes infrastructure.
    const data = new OrgDataError('bad org');
    expectInfra(couchError(data, 'x'), 'x: bad org', 'couchdb', data);
    const infra = new InfrastructureError('pg down', 'postgres');
    const out = couchError(infra, 'x');
    expectInfra(out, 'x: pg down', 'couchdb', infra);
  });

  it('throws a TypeError when given null or undefined', () => {
    expect(() => couchError(undefined, 'x')).toThrow(TypeError);
    expect(() => couchError(null, 'x')).toThrow(TypeError);
  });
});

describe('couchCall', () => {
  it('returns what the call resolves to', async () => {
    await expect(couchCall(async () => ({ ok: true }), 'x')).resolves.toEqual({ ok: true });
  });

  it('rejects with the classified error', async () => {
    const missing = nanoError(404, { error: 'not_found', reason: 'Database does not exist.' });
    const rejected = await couchCall(() => Promise.reject(missing), 'read chef_abc').catch((e: Error) => e);
    expectData(rejected, 'read chef_abc: not found in CouchDB', { statusCode: 404 });

    const down = nanoConnectionError();
    const rejected2 = await couchCall(() => Promise.reject(down), 'server info').catch((e: Error) => e);
    expectInfra(rejected2, `server info: ${down.message}`, 'couchdb', down);
  });

  it('classifies a synchronous throw inside the async call the same way', async () => {
    const err = nanoError(503, { reason: 'maintenance' });
    const rejected = await couchCall(async () => {
      throw err;
    }, 'x').catch((e: Error) => e);
    expectInfra(rejected, 'x: maintenance', 'couchdb', err);
  });
});

describe('isDataError', () => {
  it('is true only for an OrgDataError instance', () => {
    expect(isDataError(new OrgDataError('x'))).toBe(true);
    expect(isDataError(new InfrastructureError('x', 'redis'))).toBe(false);
    expect(isDataError(new Error('x'))).toBe(false);
    expect(isDataError(new TypeError('x'))).toBe(false);
  });

  it('treats look-alikes and non-errors as not data (halting is the safe default)', () => {
    expect(isDataError({ kind: 'data', name: 'OrgDataError', message: 'x' })).toBe(false);
    expect(isDataError(Object.assign(new Error('x'), { kind: 'data' }))).toBe(false);
    expect(isDataError('OrgDataError')).toBe(false);
    expect(isDataError(undefined)).toBe(false);
    expect(isDataError(null)).toBe(false);
  });
});

describe('errorMessage', () => {
  it("is an Error's message", () => {
    expect(errorMessage(new Error('plain'))).toBe('plain');
    expect(errorMessage(new OrgDataError('data', { a: 1 }))).toBe('data');
    expect(errorMessage(new InfrastructureError('infra', 'darklaunch'))).toBe('infra');
    expect(errorMessage(new TypeError('typed'))).toBe('typed');
    expect(errorMessage(new Error(''))).toBe('');
  });

  it('is the string form of anything else', () => {
    expect(errorMessage('text')).toBe('text');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
    expect(errorMessage(null)).toBe('null');
    expect(errorMessage({ message: 'not an Error' })).toBe('[object Object]');
  });
});

describe('error classes', () => {
  it('OrgDataError and InfrastructureError carry their error class, name, detail, store and cause', () => {
    const data = new OrgDataError('d', { statusCode: 404 });
    expect(data).toBeInstanceOf(Error);
    expect([data.name, data.errorClass, data.message]).toEqual(['OrgDataError', 'data', 'd']);
    expect(data.detail).toEqual({ statusCode: 404 });
    expect(new OrgDataError('no detail').detail).toBeUndefined();

    const cause = new Error('root');
    const infra = new InfrastructureError('i', 'redis', { cause });
    expect(infra).toBeInstanceOf(Error);
    expect([infra.name, infra.errorClass, infra.message, infra.store]).toEqual(['InfrastructureError', 'infrastructure', 'i', 'redis']);
    expect(infra.cause).toBe(cause);
    expect(new InfrastructureError('no cause', 'postgres').cause).toBeUndefined();
  });

  it('a refusal stands beside a data error, not under it: both are about the org, neither is infrastructure', () => {
    const refusal = new OrgRefusal('changed on SQL', { differences: [] });
    expect(refusal).not.toBeInstanceOf(OrgDataError);
    expect([refusal.name, refusal.errorClass, isDataError(refusal), isOrgError(refusal)]).toEqual(['OrgRefusal', 'refusal', false, true]);
    expect(isOrgError(new OrgDataError('bad'))).toBe(true);
    expect(isOrgError(new InfrastructureError('away', 'couchdb'))).toBe(false);
    expect(isOrgError(new Error('unexpected'))).toBe(false);
  });

  it('operator errors carry their HTTP status and code, and their own name', () => {
    const noOrgs = new NoOrgsError('no org matched');
    expect(noOrgs).toBeInstanceOf(StateConflictError);
    expect(noOrgs).toBeInstanceOf(OperatorError);
    expect([noOrgs.name, noOrgs.status, noOrgs.code]).toEqual(['NoOrgsError', 409, 'no_orgs']);
    const missing = new NotFoundError('no org x');
    expect([missing.name, missing.status, missing.code]).toEqual(['NotFoundError', 404, 'not_found']);
  });
});

describe('isStoreUnreachable (what a call waits out for up to the grace)', () => {
  it('knows a store that is away by its code, status or message, through the cause chain', async () => {
    const { isStoreUnreachable, OutcomeUnknownError } = await import('../src/stores/outage.js');
    const { InfrastructureError: Infra } = await import('../src/errors.js');
    const coded = (code: string) => Object.assign(new Error('x'), { code });
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '08006', '53300'])
      expect(isStoreUnreachable(coded(code)), code).toBe(true);
    for (const message of [
      'Connection terminated unexpectedly',
      'Reached the max retries per request limit (which is 3). Refer to "maxRetriesPerRequest" option for details.',
      'Connection is closed.',
      'timeout exceeded when trying to connect',
      // nano 11, a kept-alive connection CouchDB closed while the process was paused: the cause's text only.
      'error happened in your connection. Reason: Error: read ECONNRESET',
      'error happened in your connection. Reason: SocketError: other side closed',
    ]) {
      expect(isStoreUnreachable(new Error(message)), message).toBe(true);
    }
    expect(isStoreUnreachable(Object.assign(new Error('couch'), { statusCode: 503 }))).toBe(true);
    expect(isStoreUnreachable(new Infra('darklaunch write dl_org_a: x', 'darklaunch', { cause: coded('ECONNREFUSED') }))).toBe(true);
    // Not unreachable: the store answered, or the outcome of a write is unknown (never sent again).
    for (const code of ['23505', '22P02', '42P01', '40001']) expect(isStoreUnreachable(coded(code)), code).toBe(false);
    expect(isStoreUnreachable(Object.assign(new Error('couch'), { statusCode: 404 }))).toBe(false);
    expect(isStoreUnreachable(new OutcomeUnknownError('COMMIT: Connection terminated', { cause: coded('ECONNRESET') }))).toBe(false);
    expect(isStoreUnreachable(undefined)).toBe(false);
  });

  it('retries through a store that comes back within the grace, and gives up with the error after it', async () => {
    const { retryThroughOutage } = await import('../src/stores/outage.js');
    const { createLogger } = await import('../src/log.js');
    const log = createLogger('silent', 'test');
    let calls = 0;
    const flaky = async () => {
      if (++calls < 3) throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' });
      return 'ok';
    };
    expect(await retryThroughOutage({ graceMs: 5000, log }, 'postgres', 'test', flaky)).toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    const gone = async () => {
      calls++;
      throw Object.assign(new Error('still down'), { code: 'ECONNREFUSED' });
    };
    await expect(retryThroughOutage({ graceMs: 250, log }, 'postgres', 'test', gone)).rejects.toThrow('still down');
    expect(calls).toBeGreaterThan(1);
    calls = 0;
    const dataError = async () => {
      calls++;
      throw Object.assign(new Error('duplicate key'), { code: '23505' });
    };
    await expect(retryThroughOutage({ graceMs: 5000, log }, 'postgres', 'test', dataError)).rejects.toThrow('duplicate key');
    expect(calls).toBe(1);
  });
});
