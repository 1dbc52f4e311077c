// Running migrations (legacy mover_manager: migrate/3, status, halt, workers).
import { audit } from '../../db/audit.js';
import { actorOf, orgsFromText } from '../operator-input.js';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import * as manager from '../../runs/manager.js';
import { Concurrency, migrationType, OrgNames, TypeParams, type TypeParamsT } from '../schemas.js';

const StartBody = Type.Object(
  { count: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('all')]), concurrency: Type.Optional(Concurrency) },
  { additionalProperties: false },
);
// writeBack: what changed on SQL since an org migrated is written back to
// CouchDB before it is reverted; without it, such an org is refused.
const WriteBack = Type.Optional(Type.Boolean());
const RevertBody = Type.Union([
  Type.Object({ orgs: OrgNames, concurrency: Type.Optional(Concurrency), writeBack: WriteBack }, { additionalProperties: false }),
  Type.Object({ count: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('all')]), concurrency: Type.Optional(Concurrency), writeBack: WriteBack }, { additionalProperties: false }),
]);
const REVERT = 'phase_2_revert';
const ConcurrencyBody = Type.Object({ concurrency: Concurrency }, { additionalProperties: false });

export default async function runs(app: FastifyInstance) {
  const { ctx } = app;

  app.post<{ Params: TypeParamsT; Body: Static<typeof StartBody> }>(
    '/migrations/:type/start',
    { schema: { params: TypeParams, body: StartBody } },
    async (req, reply) => {
      const type = migrationType(req.params.type);
      const { run } = await manager.startRun(ctx, type, { count: req.body.count, concurrency: req.body.concurrency ?? 8 });
      await audit(ctx.db, actorOf(req), 'run.start', { migration_type: type, run_id: run.id, count: req.body.count, concurrency: req.body.concurrency ?? 8 });
      return reply.code(202).send({ runId: run.id, orgs: run.enqueued });
    },
  );

  // Revert takes org names, or a count of completed orgs, and writeBack.
  app.post<{ Body: Static<typeof RevertBody> }>(`/migrations/${REVERT}/start`, { schema: { body: RevertBody }, preValidation: orgsFromText }, async (req, reply) => {
    const body = req.body as { orgs?: string[]; count?: number | 'all'; concurrency?: number; writeBack?: boolean };
    const writeBack = body.writeBack === true;
    const { run, skipped } = await manager.startRun(ctx, REVERT, { count: body.count ?? 'all', orgs: body.orgs, concurrency: body.concurrency ?? 8, params: { writeBack } });
    await audit(ctx.db, actorOf(req), 'run.start', { migration_type: REVERT, run_id: run.id, orgs: body.orgs ?? body.count, skipped, writeBack });
    return reply.code(202).send({ runId: run.id, orgs: run.enqueued, skipped });
  });

  app.get<{ Params: TypeParamsT }>('/migrations/:type/status', { schema: { params: TypeParams } }, async (req) => {
    return manager.runStatus(ctx, migrationType(req.params.type));
  });

  app.post<{ Params: TypeParamsT }>('/migrations/:type/halt', { schema: { params: TypeParams } }, async (req) => {
    const run = await manager.haltRun(ctx, migrationType(req.params.type), actorOf(req));
    await audit(ctx.db, actorOf(req), 'run.halt', { migration_type: req.params.type, run_id: run.id });
    return { runId: run.id, state: run.state };
  });

  app.put<{ Params: TypeParamsT; Body: Static<typeof ConcurrencyBody> }>(
    '/migrations/:type/concurrency',
    { schema: { params: TypeParams, body: ConcurrencyBody } },
    async (req) => {
      const type = migrationType(req.params.type);
      await manager.setConcurrency(ctx, type, req.body.concurrency);
      await audit(ctx.db, actorOf(req), 'run.concurrency', { migration_type: type, concurrency: req.body.concurrency });
      return { concurrency: req.body.concurrency };
    },
  );
}
