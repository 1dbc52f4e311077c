// Named operators (docs/api.md, "Operators"): each request is one operator's,
// the audit log says whose, a confirmation is in the signed-in operator's
// own name, and the operators file is read again on change and on SIGHUP.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as phasesDb from '../src/db/phases.js';
import { phaseDef } from '../src/phases/definitions.js';
import { parseOperators, sha256 } from '../src/api/operators.js';
import { createHarness, waitFor, type Harness } from './support/harness.js';

const TOKENS = { alice: 'alice-token-0123456789', bob: 'bob-token-0123456789', carol: 'carol-token-0123456789' };
const line = (name: keyof typeof TOKENS) => `${name} ${sha256(TOKENS[name]).toString('hex')}`;
const as = (name: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[name]}` });

describe('the operators file', () => {
  it('takes one operator a line, skips comments and blank lines, and names each line it leaves out', () => {
    const hex = 'a'.repeat(64);
    const { operators, problems } = parseOperators(
      ['# who may use the api', '', `alice ${hex}  # on call`, `bob ${hex} extra`, `carol nothex`, `dave\u0000x ${hex}`, `alice ${'b'.repeat(64)}`].join('\n'),
    );
    expect(operators.map((o) => o.name)).toEqual(['alice']);
    expect(operators[0].hash).toEqual(Buffer.from(hex, 'hex'));
    expect(problems).toEqual([
      { line: 4, why: expect.stringContaining('two fields') },
      { line: 5, why: expect.stringContaining('not 64 hex digits') },
      { line: 6, why: expect.stringContaining('without spaces or NUL') },
      { line: 7, why: expect.stringContaining('listed twice') },
    ]);
  });
});

describe('named operators', () => {
  let h: Harness;
  let file: string;

  beforeAll(async () => {
    file = join(mkdtempSync(join(tmpdir(), 'mover-operators-')), 'operators');
    writeFileSync(file, `${line('alice')}\n${line('bob')}\n`);
    h = await createHarness('operators', { operatorsFile: file, apiToken: '' });
  });
  afterAll(() => h?.close());

  const auditActors = async () => (await h.api('GET', '/audit?limit=20', undefined, as('alice'))).body.entries.map((e: { actor: string }) => e.actor);

  it('authenticates each operator by their own token, and the audit log records who, whatever X-Mover-Actor says', async () => {
    expect((await h.api('GET', '/phases', undefined, as('alice'))).status).toBe(200);
    expect((await h.api('GET', '/phases', undefined, as('bob'))).status).toBe(200);
    expect((await h.api('GET', '/phases', undefined, as('carol'))).status).toBe(401);
    // The shared token of a single-operator api is no operator here.
    expect((await h.api('GET', '/phases')).status).toBe(401);
    expect((await h.api('PUT', '/settings/sleep-time', { ms: 10 }, { ...as('bob'), 'x-mover-actor': 'mallory' })).status).toBe(200);
    expect((await auditActors())[0]).toBe('bob');
  });

  it("records a confirmation in the signed-in operator's name; another name is a 403", async () => {
    // Phase 2 waiting at its first manual step, as the driver leaves it (no workers run in this file).
    await h.ctx.db.query(`UPDATE mover.phases SET state = 'completed' WHERE n = 1`);
    await phasesDb.startPhase(h.ctx.db, 2, {}, 'alice', phaseDef(2)!.steps, { asked: false, would: '' });
    await phasesDb.updateStep(h.ctx.db, 2, '2.1', 'waiting_confirmation', {});
    const wrong = await h.api('POST', '/phases/2/steps/2.1/confirm', { by: 'bob' }, as('alice'));
    expect(wrong.status).toBe(403);
    expect(wrong.body.message).toContain('by');
    expect((await h.api('GET', '/phases/2', undefined, as('alice'))).body.steps[0].state).toBe('waiting_confirmation');
    const ok = await h.api('POST', '/phases/2/steps/2.1/confirm', { note: 'org creator stopped' }, as('alice'));
    expect(ok.status).toBe(200);
    expect(ok.body.steps[0]).toMatchObject({ id: '2.1', confirmed_by: 'alice' });
    const entry = (await h.api('GET', '/audit?limit=5', undefined, as('alice'))).body.entries.find((e: { action: string }) => e.action === 'phase.confirm');
    expect(entry).toMatchObject({ actor: 'alice', detail: { phase: 2, step: '2.1', note: 'org creator stopped' } });
  });

  it('refuses a revoked token from the next request on once the file changes, and takes a new one on SIGHUP', async () => {
    expect((await h.api('GET', '/phases', undefined, as('bob'))).status).toBe(200);
    writeFileSync(file, `${line('alice')}\n`);
    await waitFor('bob revoked', async () => (await h.api('GET', '/phases', undefined, as('bob'))).status === 401, 10_000, 50);
    // The browser's cookie holds bob's token too: refused as well.
    expect((await h.app.inject({ method: 'GET', url: '/phases', cookies: { mover_token: TOKENS.bob } })).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'GET', url: '/phases', cookies: { mover_token: TOKENS.alice } })).statusCode).toBe(200);
    // carol is added; the api is told at once by SIGHUP, as an operator would (the file watch would see it within a second).
    writeFileSync(file, `${line('alice')}\n${line('carol')}\n`);
    process.kill(process.pid, 'SIGHUP');
    await waitFor('carol added', async () => (await h.api('GET', '/phases', undefined, as('carol'))).status === 200, 5_000, 20);
    expect((await h.api('GET', '/phases', undefined, as('alice'))).status).toBe(200);
    expect((await h.api('GET', '/phases', undefined, as('bob'))).status).toBe(401);
  });

  it('signs a browser in by the form with its own token, and out once that token is revoked', async () => {
    const login = await h.app.inject({ method: 'POST', url: '/login', payload: { token: TOKENS.carol, next: '/runbook' } });
    expect(login.statusCode).toBe(303);
    const cookie = login.cookies.find((c) => c.name === 'mover_token')!;
    expect(cookie.value).toBe(TOKENS.carol);
    expect((await h.app.inject({ method: 'POST', url: '/login', payload: { token: TOKENS.bob } })).statusCode).toBe(401);
  });
});
