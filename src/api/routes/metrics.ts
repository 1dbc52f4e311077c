// Prometheus text: this process's metrics and the fleet's (src/metrics.ts).
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { Type } from '@sinclair/typebox';
import { registry } from '../../metrics.js';
import { fleetRegistry } from '../fleet-metrics.js';

export default async function metrics(app: FastifyInstance) {
  // Every metric is registered once, so the two registries are merged once.
  const merged = Registry.merge([registry, fleetRegistry(app.ctx)]);
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus text: this process and the fleet', produces: ['text/plain'], response: { 200: Type.String() } } },
    async (_req, reply) => {
      return reply.type(merged.contentType).send(await merged.metrics());
    },
  );
}
