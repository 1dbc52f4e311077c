import type { FastifyInstance } from 'fastify';
import { checkStores } from '../../stores/health.js';

export default async function health(app: FastifyInstance) {
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Says which store is down while one is: the process itself keeps running and reconnects by itself.
  app.get('/readyz', async (_req, reply) => {
    const { checks, failing } = await checkStores(app.ctx);
    if (failing.length) return reply.code(503).send({ status: 'unavailable', failing, checks });
    return { status: 'ready', checks };
  });
}
