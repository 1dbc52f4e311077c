// Chef allows org names of up to 255 characters (docs/api.md): every route
// that takes an org name takes one that long, in the path (URL-encoded too),
// the query or a body, and so does the CLI; 256 is refused with a 400 naming
// the field, never a 414 from the router.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { createHarness, refreshAccount, type Harness } from './support/harness.js';

const T = 'phase_2_migration';
// 'o' then 254 characters of [a-z0-9-]: a name Chef accepts, of its longest length.
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789-';
const LONG = 'o' + Array.from({ length: 254 }, (_, i) => ALPHABET[(i * 7) % ALPHABET.length]).join('');
const TOO_LONG = LONG + 'x';

let h: Harness;
let url: string;
let guid: string;
const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);

beforeAll(async () => {
  process.on('warning', onWarning);
  h = await createHarness('long_names');
  [{ guid }] = await h.seed([{ name: LONG, containers: 1, groups: 1 }]);
  h.startWorkers(); // the account refresh is a job
  await refreshAccount(h);
  url = await h.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  process.off('warning', onWarning);
  await h?.close();
});

const mover = (args: string[]) => runCli(url, args);

describe('org names of 255 characters', () => {
  it('are what the test says they are', () => {
    expect(LONG).toHaveLength(255);
    expect(LONG).toMatch(/^[a-z0-9][a-z0-9_-]*$/);
    expect(TOO_LONG).toHaveLength(256);
  });

  it('are let through by the router option Fastify 5 wants (routerOptions, no FSTDEP022 deprecation)', () => {
    expect(warnings.filter((w) => (w as Error & { code?: string }).code === 'FSTDEP022')).toEqual([]);
  });

  it('are captured from a body, and the state row holds the whole name', async () => {
    const res = await h.api('POST', `/migrations/${T}/orgs`, { orgs: [LONG] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ inserted: [LONG], duplicate: [], unknown: [] });
    const { rows } = await h.ctx.db.query(`SELECT org_name, org_id, state FROM org_migration_state WHERE migration_type = $1`, [T]);
    expect(rows).toEqual([{ org_name: LONG, org_id: guid, state: 'holding' }]);
  });

  it('are listed, and taken back as the cursor of the list route', async () => {
    const page = await h.api('GET', `/migrations/${T}/orgs?limit=1`);
    expect(page.status).toBe(200);
    expect(page.body.orgs.map((o: { org_name: string }) => o.org_name)).toEqual([LONG]);
    expect(page.body.next_cursor).toBe(LONG);
    const next = await h.api('GET', `/migrations/${T}/orgs?limit=1&cursor=${encodeURIComponent(String(page.body.next_cursor))}`);
    expect(next.status).toBe(200);
    expect(next.body).toMatchObject({ orgs: [], next_cursor: null });
  });

  it('pass as a path parameter: GET /orgs/:name and GET /darklaunch/orgs/:name answer 200, not 414', async () => {
    const org = await h.api('GET', `/orgs/${LONG}`);
    expect(org.status).toBe(200);
    expect(org.body).toMatchObject({ org_name: LONG, org_id: guid, states: { [T]: { state: 'holding' } } });
    const flags = await h.api('GET', `/darklaunch/orgs/${LONG}`);
    expect(flags.status).toBe(200);
    expect(flags.body).toMatchObject({ org_name: LONG, couchdb_containers: null, couchdb_groups: null });
  });

  it('pass URL-encoded, even when every character is encoded (three times the length)', async () => {
    const everyByte = [...LONG].map((c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')).join('');
    expect(everyByte).toHaveLength(255 * 3);
    const org = await h.api('GET', `/orgs/${everyByte}`);
    expect(org.status).toBe(200);
    expect(org.body.org_name).toBe(LONG);
    const flags = await h.api('GET', `/darklaunch/orgs/${everyByte}`);
    expect(flags.status).toBe(200);
    expect(flags.body.org_name).toBe(LONG);
    // 255 characters of four UTF-8 bytes each: twelve times the length encoded; the schema counts characters.
    const astral = '\u{1F600}'.repeat(255);
    const wide = await h.api('GET', `/darklaunch/orgs/${encodeURIComponent(astral)}`);
    expect(wide.status).toBe(200);
    expect(wide.body.org_name).toBe(astral);
  });

  it('are moved between states by name, in a body', async () => {
    const ready = await h.api('POST', `/migrations/${T}/ready`, { orgs: [LONG] });
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ updated: 1 });
    const hold = await h.api('POST', `/migrations/${T}/hold`, { orgs: [LONG] });
    expect(hold.status).toBe(200);
    expect(hold.body).toMatchObject({ updated: 1 });
    const { rows } = await h.ctx.db.query(`SELECT state FROM org_migration_state WHERE org_name = $1 AND migration_type = $2`, [LONG, T]);
    expect(rows).toEqual([{ state: 'holding' }]);
  });

  it('work in the CLI: mover orgs show <name> against a listening api', async () => {
    const shown = await mover(['--json', 'orgs', 'show', LONG]);
    expect(shown).toMatchObject({ code: 0, err: '' });
    const body = JSON.parse(shown.out);
    expect(body.org_name).toBe(LONG);
    expect(body.org_id).toBe(guid);
    expect(body.states[T].state).toBe('holding');
    const plain = await mover(['orgs', 'show', LONG]);
    expect(plain.code).toBe(0);
    expect(plain.out.split('\n')[0]).toBe(`${LONG} (${guid})`);
  }, 30_000);
});

describe('org names of 256 characters', () => {
  it.each([
    ['GET /orgs/<256>', 'GET', `/orgs/${TOO_LONG}`, undefined],
    ['GET /darklaunch/orgs/<256>', 'GET', `/darklaunch/orgs/${TOO_LONG}`, undefined],
    ['GET /orgs/<256 four-byte characters, encoded>', 'GET', `/orgs/${encodeURIComponent('\u{1F600}'.repeat(256))}`, undefined],
    ['capture', 'POST', `/migrations/${T}/orgs`, { orgs: [TOO_LONG] }],
    ['ready', 'POST', `/migrations/${T}/ready`, { orgs: [TOO_LONG] }],
    ['hold', 'POST', `/migrations/${T}/hold`, { orgs: [TOO_LONG] }],
    ['reset', 'POST', `/migrations/${T}/reset`, { orgs: [TOO_LONG] }],
    ['revert start', 'POST', '/migrations/phase_2_revert/start', { orgs: [TOO_LONG] }],
    ['phase 1 start', 'POST', '/phases/1/start', { orgs: [TOO_LONG] }],
  ])('%s → 400 naming the field, not 414 or 500', async (_label, method, path, body) => {
    const res = await h.api(method as 'GET' | 'POST', path, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('bad_request');
    expect(res.body.message).toMatch(/(params\/name|body\/orgs\/0) must NOT have more than 255 characters/);
  });

  it('are refused in the CLI with the 400, and nothing is captured', async () => {
    const shown = await mover(['orgs', 'show', TOO_LONG]);
    expect(shown.code).toBe(1);
    expect(shown.err.trim()).toMatch(/^mover: 400 bad_request: params\/name must NOT have more than 255 characters$/);
    const capture = await mover(['orgs', 'capture', TOO_LONG]);
    expect(capture.code).toBe(1);
    expect(capture.err.trim()).toMatch(/^mover: 400 bad_request: body\/orgs\/0 must NOT have more than 255 characters$/);
    const { rows } = await h.ctx.db.query(`SELECT org_name FROM org_migration_state`);
    expect(rows).toEqual([{ org_name: LONG }]);
  }, 30_000);
});
