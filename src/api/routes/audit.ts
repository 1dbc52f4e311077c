// The audit log: who changed what, newest first.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { listAudit } from '../../db/audit.js';
import { Detail, NextCursor, Reply, replies } from '../schemas.js';

const Query = Type.Object(
  { limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })), cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })) },
  { additionalProperties: false },
);
export const Entries = Reply({
  entries: Type.Array(
    Type.Object({
      id: Type.String(),
      at: Type.String({ description: 'ISO date-time' }),
      actor: Type.String({ description: 'the operator, or "phase n" for what a phase did for its operator' }),
      action: Type.String({ description: 'e.g. phase.start, phase.again, run.retry, settings.sleep_time' }),
      detail: Detail('what was changed, and how'),
    }),
    { description: 'newest first' },
  ),
  next_cursor: NextCursor('the last id'),
});

export default async function auditRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/audit', { schema: { summary: 'The audit log, a page', querystring: Query, response: replies(Entries) } }, async (req) => {
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100), 1), 1000);
    const entries = await listAudit(app.ctx.db, limit, req.query.cursor);
    return { entries, next_cursor: entries.length === limit ? entries[entries.length - 1].id : null };
  });
}
