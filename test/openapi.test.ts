// The OpenAPI document: served at /docs/json behind the token, and the
// committed docs/openapi.json is the one the routes make (run `npm run
// openapi` after changing a route).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../src/api/openapi-document.js';
import { createHarness, type Harness } from './support/harness.js';

let h: Harness;
/** What this test reads of the document: each path's operations and the status codes they answer. */
type OpenApiPaths = { paths: Record<string, Record<string, { responses: Record<string, unknown> } | undefined>> };
beforeAll(async () => {
  h = await createHarness('openapi');
});
afterAll(() => h?.close());

describe('the OpenAPI document', () => {
  it('is committed as the routes make it: a route changed without `npm run openapi` fails here', async () => {
    const committed = JSON.parse(readFileSync(new URL('../docs/openapi.json', import.meta.url), 'utf8'));
    expect(await openApiDocument()).toEqual(committed);
  });

  it('describes every route of the contract with its replies, and is served at /docs/json and /docs behind the token', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(401);
    const doc = (await h.api('GET', '/docs/json')).body as OpenApiPaths;
    for (const [path, method] of [
      ['/migrations/{type}/start', 'post'],
      ['/migrations/{type}/status', 'get'],
      ['/phases/{n}', 'get'],
      ['/phases/{n}/steps/{id}/confirm', 'post'],
      ['/orgs/{name}', 'get'],
      ['/settings/sleep-time', 'put'],
      ['/account/refresh', 'post'],
    ]) {
      const op = doc.paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(Object.keys(op?.responses ?? {}), `${method} ${path}`).toEqual(expect.arrayContaining(['400', '401', '404', '409']));
    }
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/admin/queues'))).toBe(false);
    const ui = await h.api('GET', '/docs/');
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger');
  });
});
