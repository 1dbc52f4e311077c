// Builds the API: external plugins, our plugins, then routes, in that order.
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Context } from '../context.js';
import bullBoard from './plugins/bull-board.js';
import auth from './plugins/auth.js';
import context from './plugins/context.js';
import errors from './plugins/errors.js';
import account from './routes/account.js';
import auditRoutes from './routes/audit.js';
import darklaunch from './routes/darklaunch.js';
import health from './routes/health.js';
import metrics from './routes/metrics.js';
import orgs from './routes/orgs.js';
import phases from './routes/phases.js';
import runbookPage from './routes/runbook-page.js';
import migrations from './routes/migrations/index.js';
import settings from './routes/settings.js';
import survey from './routes/survey.js';
import { Operators } from './operators.js';

export async function buildApp(ctx: Context): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.log.child({ component: 'api' }),
    bodyLimit: 16 * 1024 * 1024, // an org list of 100k names fits
    // Org names are up to 255 characters (as Chef allows); one percent-encoded in a path can take 12 each (4 UTF-8 bytes as %XX), so 255 * 12.
    routerOptions: { maxParamLength: 255 * 12 },
    // Strict input: no silent type coercion and no silently dropped fields.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }) as unknown as FastifyInstance;

  // Org lists may come as files: text/plain, one name a line.
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  // The OpenAPI document is made from the routes' own schemas: /docs/json, browsable at /docs (behind the token).
  await app.register(swagger, {
    openapi: {
      info: { title: 'mover', version: '1', description: "Moves Chef orgs' containers and groups from CouchDB to PostgreSQL. docs/api.md says it in words." },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // Bull Board's own routes and the docs' are not the API.
    transform: ({ schema, url }) => ({ schema: /^\/(admin\/queues|docs|login|runbook)/.test(url) ? { ...schema, hide: true } : schema, url }),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(context, { ctx });
  await app.register(errors);
  await app.register(auth, { operators: new Operators({ file: ctx.config.operatorsFile, token: ctx.config.apiToken || undefined }, ctx.log) });
  await app.register(bullBoard, { ctx });

  for (const routes of [health, account, orgs, settings, darklaunch, phases, auditRoutes, metrics, runbookPage, survey]) await app.register(routes);
  await app.register(migrations, { prefix: '/migrations' });
  return app;
}
