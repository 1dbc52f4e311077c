import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { checkStores } from '../../stores/health.js';

const Health = Type.Object({ status: Type.Literal('ok') });
const Ready = Type.Object({
  status: Type.String(),
  failing: Type.Optional(Type.Array(Type.String())),
  checks: Type.Record(Type.String(), Type.String(), { description: 'each store: "ok", or why not' }),
});

export default async function health(app: FastifyInstance) {
  app.get('/healthz', { schema: { summary: 'The process is up (no token needed)', response: { 200: Health } } }, async () => ({ status: 'ok' as const }));

  // Says which store is down while one is: the process itself keeps running and reconnects by itself.
  app.get(
    '/readyz',
    { schema: { summary: 'Every store answers (no token needed); 503 names the ones that do not', response: { 200: Ready, 503: Ready } } },
    async (_req, reply) => {
      const { checks, failing } = await checkStores(app.ctx);
      if (failing.length) return reply.code(503).send({ status: 'unavailable', failing, checks });
      return { status: 'ready', checks };
    },
  );
}
