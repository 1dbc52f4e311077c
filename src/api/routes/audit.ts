import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { listAudit } from '../../db/audit.js';

const Query = Type.Object(
  { limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })), cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })) },
  { additionalProperties: false },
);

export default async function auditRoutes(app: FastifyInstance) {
  app.get<{ Querystring: Static<typeof Query> }>('/audit', { schema: { querystring: Query } }, async (req) => {
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100), 1), 1000);
    const entries = await listAudit(app.ctx.db, limit, req.query.cursor);
    return { entries, next_cursor: entries.length === limit ? entries[entries.length - 1].id : null };
  });
}
