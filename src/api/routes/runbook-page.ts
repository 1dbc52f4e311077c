// The runbook page (GET /runbook): where an operator looks, and acts, instead
// of reading JSON (src/api/page/). Served with the CSRF token of the browser
// that asks (its cookie's), with its script (GET /runbook/<module>.js, from
// src/api/page/browser/, compiled: src/api/page/runbook-scripts.ts), and with
// the charting library it draws with, uPlot, from node_modules: never a CDN.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { PHASE_2_MIGRATION } from '../../queue-names.js';
import { NotFoundError } from '../../errors.js';
import { runbookHtml } from '../page/runbook-html.js';
import { pageScripts } from '../page/runbook-scripts.js';
import { csrfTokenFor } from '../plugins/auth.js';

const require = createRequire(import.meta.url);
/** Read once: a few tens of kB, sent with a day's caching. */
const UPLOT = {
  js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
  css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
};

export default async function runbookPage(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/runbook', { schema: { summary: 'The runbook page (HTML)', produces: ['text/html'], response: { 200: Type.String() } } }, async (req, reply) =>
    reply
      .type('text/html')
      .header('cache-control', 'no-store')
      .send(
        runbookHtml({
          csrf: req.auth ? csrfTokenFor(req.auth.token) : '',
          operator: req.operator ?? 'operator',
          named: app.operators.named,
          type: PHASE_2_MIGRATION,
        }),
      ),
  );
  // Revalidated on every load (no-cache): the script changes with each deploy, and must be the one the page it runs in came with.
  app.get('/runbook/:module', { schema: { hide: true, params: Type.Object({ module: Type.String({ maxLength: 100 }) }) } }, async (req, reply) => {
    const js = (await pageScripts()).get(req.params.module);
    if (js === undefined) throw new NotFoundError(`the runbook page has no script ${req.params.module}`, 'unknown_script');
    return reply.type('application/javascript').header('cache-control', 'private, no-cache').send(js);
  });
  app.get('/assets/uplot.js', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('application/javascript').header('cache-control', 'private, max-age=86400').send(UPLOT.js),
  );
  app.get('/assets/uplot.css', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/css').header('cache-control', 'private, max-age=86400').send(UPLOT.css),
  );
}
