// The audit log: who changed what, newest first.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { listAudit } from '../../db/audit.js';
import { Json, replies, Reply } from '../schemas.js';

const Query = Type.Object(
  { limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })), cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })) },
  { additionalProperties: false },
);
const Entries = Reply({
  entries: Json('[{id, at, actor, action, detail}], newest first'),
  next_cursor: Json('the last id, to pass as cursor; null on the last page'),
});

export default async function auditRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/audit', { schema: { summary: 'The audit log, a page', querystring: Query, response: replies(Entries) } }, async (req) => {
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100), 1), 1000);
    const entries = await listAudit(app.ctx.db, limit, req.query.cursor);
    return { entries, next_cursor: entries.length === limit ? entries[entries.length - 1].id : null };
  });
}
