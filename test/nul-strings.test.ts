// Strings PostgreSQL cannot store (it refuses NUL, U+0000, in text): every
// string an operator sends is refused with a 400 naming its field, never a
// 500 from the database; and the error handler maps the database's own
// encoding error to 400 as a backstop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnstorableText } from '../src/stores/postgres.js';
import { createHarness, type Harness } from './support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('nul-strings');
});
afterAll(() => h?.close());

const NUL = 'a\u0000b';
const T = 'phase_2_migration';

describe('a NUL in a string an operator sends', () => {
  // [method, url, body, the field the 400 names]
  const cases: [Parameters<Harness['api']>[0], string, unknown, string][] = [
    ['POST', '/phases/2/steps/2.1/confirm', { by: '\u0000' }, 'by'],
    ['POST', '/phases/2/steps/2.1/confirm', { by: 'alice', note: NUL }, 'note'],
    ['POST', '/phases/1/start', { orgs: [NUL] }, 'orgs'],
    ['POST', `/migrations/${T}/orgs`, { orgs: ['fine', NUL] }, 'orgs'],
    ['POST', `/migrations/${T}/ready`, { orgs: [NUL] }, 'orgs'],
    ['POST', `/migrations/${T}/hold`, { orgs: [NUL] }, 'orgs'],
    ['POST', `/migrations/${T}/reset`, { orgs: [NUL] }, 'orgs'],
    ['POST', '/migrations/phase_2_revert/start', { orgs: [NUL] }, 'orgs'],
    ['GET', `/migrations/${T}/orgs?cursor=a%00b`, undefined, 'cursor'],
    ['GET', '/orgs/a%00b', undefined, 'name'],
    ['GET', '/darklaunch/orgs/a%00b', undefined, 'name'],
    ['GET', '/survey/orgs?finding=a%00b', undefined, 'finding'],
    ['GET', '/survey/orgs?cursor=a%00b', undefined, 'cursor'],
  ];
  for (const [method, url, body, field] of cases) {
    it(`${method} ${url} ${body ? JSON.stringify(body) : ''}: 400 naming ${field}`, async () => {
      const res = await h.api(method, url, body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.message).toContain(field);
    });
  }

  it('in an org list sent as text (one name a line): 400 naming orgs', async () => {
    const res = await h.api('POST', `/migrations/${T}/orgs`, `fine\n${NUL}\n`, { 'content-type': 'text/plain' });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('orgs');
  });

  it('wrote nothing: no org captured, no audit line, no phase started', async () => {
    const { rows } = await h.ctx.db.query(
      `SELECT (SELECT count(*) FROM org_migration_state)::int AS orgs, (SELECT count(*) FROM mover.audit_log)::int AS audit,
              (SELECT count(*) FROM mover.phases WHERE state <> 'not_started')::int AS phases`,
    );
    expect(rows[0]).toEqual({ orgs: 0, audit: 0, phases: 0 });
  });
});

describe('the backstop', () => {
  it("knows PostgreSQL's own refusal of a NUL for what it is (the error handler answers it 400)", async () => {
    const err = await h.ctx.db.query('SELECT $1::text AS t', [NUL]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(isUnstorableText(err)).toBe(true);
    expect(isUnstorableText(new Error('connection refused'))).toBe(false);
  });
});
