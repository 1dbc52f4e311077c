import type { FastifyInstance } from 'fastify';
import { ping } from '../../db/ping.js';
import { errorMessage } from '../../errors.js';

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref())]);

export default async function health(app: FastifyInstance) {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const { db, queueRedis, darklaunchRedis, couch } = app.ctx;
    const checks: Record<string, () => Promise<unknown>> = {
      postgres: () => ping(db),
      queue_redis: () => queueRedis.ping(),
      darklaunch_redis: () => darklaunchRedis.ping(),
      couchdb: () => couch.ping(),
    };
    const results: Record<string, string> = {};
    const failing: string[] = [];
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 2000);
          results[name] = 'ok';
        } catch (err) {
          results[name] = errorMessage(err);
          failing.push(name);
        }
      }),
    );
    if (failing.length) return reply.code(503).send({ status: 'unavailable', failing: failing.sort(), checks: results });
    return { status: 'ready', checks: results };
  });
}
