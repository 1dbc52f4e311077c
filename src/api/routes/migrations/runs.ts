// /migrations/:type runs (legacy mover_manager: migrate/3, halt, workers): start, revert, retry, halt, concurrency.
// What they read back (status, the run list, failures, series) is in run-reads.ts.
import { audit } from '../../../db/audit.js';
import { StateConflictError } from '../../../errors.js';
import { actorOf, orgsFromText } from '../../operator-input.js';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import * as manager from '../../../runs/manager.js';
import { runState, RUN_STATES } from '../../../runs/run-state.js';
import { deleteOwnedOrgObjects } from '../../../db/org-objects.js';
import * as tracker from '../../../db/state-tracker.js';
import { PHASE_2_REVERT } from '../../../queue-names.js';
import { Concurrency, migrationType, OrgNames, orgsType, replies, Reply, TypeParams } from '../../schemas.js';

const StartBody = Type.Object(
  { count: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('all')]), concurrency: Type.Optional(Concurrency) },
  { additionalProperties: false },
);
// write_back: what changed on SQL since an org migrated is written back to
// CouchDB before it is reverted; without it, such an org is refused.
const WriteBack = Type.Optional(Type.Boolean({ description: 'write what changed on SQL back to CouchDB first; without it such an org is refused' }));
const RevertBody = Type.Union([
  Type.Object({ orgs: OrgNames, concurrency: Type.Optional(Concurrency), write_back: WriteBack }, { additionalProperties: false }),
  Type.Object(
    { count: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('all')]), concurrency: Type.Optional(Concurrency), write_back: WriteBack },
    { additionalProperties: false },
  ),
]);
const RetryBody = Type.Object({ orgs: OrgNames, concurrency: Type.Optional(Concurrency) }, { additionalProperties: false });
const REVERT = PHASE_2_REVERT;
const ConcurrencyBody = Type.Object({ concurrency: Concurrency }, { additionalProperties: false });
export const Started = Reply({
  run_id: Type.String(),
  orgs: Type.Integer({ description: 'orgs the run takes' }),
  skipped: Type.Optional(Type.Array(Type.String(), { description: 'named orgs the run could not take (revert: not completed; retry: not failed)' })),
});
export const Resized = Reply({ concurrency: Type.Integer() });
export const Halted = Reply({ run_id: Type.String(), state: Type.Union(RUN_STATES.map((s) => Type.Literal(s))) });

export default async function runs(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { ctx } = app;

  app.post(
    '/:type/start',
    {
      schema: {
        summary: 'Start a run: count ready orgs (or all), concurrency orgs in flight fleet-wide',
        params: TypeParams,
        body: StartBody,
        response: replies(Started, 202),
      },
    },
    async (req, reply) => {
      const type = migrationType(req.params.type);
      const phase = manager.kindOf(type).run.onlyFromPhase;
      if (phase !== undefined)
        throw new StateConflictError(`${type} is started by phase ${phase} (POST /phases/${phase}/start), with its confirmation`, 'phase_only');
      const { run } = await manager.startRun(ctx, type, { count: req.body.count, concurrency: req.body.concurrency ?? 8 });
      await audit(ctx.db, actorOf(req), 'run.start', { migration_type: type, run_id: run.id, count: req.body.count, concurrency: req.body.concurrency ?? 8 });
      return reply.code(202).send({ run_id: run.id, orgs: run.enqueued });
    },
  );

  // Revert takes org names, or a count of completed orgs, and write_back.
  app.post(
    `/${REVERT}/start`,
    {
      schema: { summary: 'Revert completed orgs to CouchDB: named ones, or a count of them by org_id', body: RevertBody, response: replies(Started, 202) },
      preValidation: orgsFromText,
    },
    async (req, reply) => {
      const body = req.body;
      const write_back = body.write_back === true;
      const which = 'orgs' in body ? { count: 'all' as const, orgs: body.orgs } : { count: body.count };
      const { run, skipped } = await manager.startRun(ctx, REVERT, { ...which, concurrency: body.concurrency ?? 8, params: { write_back } });
      await audit(ctx.db, actorOf(req), 'run.start', {
        migration_type: REVERT,
        run_id: run.id,
        orgs: 'orgs' in body ? body.orgs : body.count,
        skipped,
        write_back,
      });
      return reply.code(202).send({ run_id: run.id, orgs: run.enqueued, skipped });
    },
  );

  // Retry: the named failed orgs go back to ready (their partial SQL rows deleted, as a reset does) and a run takes only them.
  app.post(
    '/:type/retry',
    {
      schema: {
        summary: 'Retry failed orgs: reset the named ones to ready, then start a run of only them (409 while a run is active)',
        params: TypeParams,
        body: RetryBody,
        response: replies(Started, 202),
      },
      preValidation: orgsFromText,
    },
    async (req, reply) => {
      const type = orgsType(req.params.type);
      const active = await manager.runOf(ctx, type);
      if (active && active.state !== 'ready')
        throw new StateConflictError(`a ${type} run (${active.id}) is active; halt it or let it end, then retry`, 'run_active');
      const names = [...new Set(req.body.orgs)];
      const wasReset = new Set(await tracker.resetOrgs(ctx.db, type, names, (c, orgId) => deleteOwnedOrgObjects(c, type, orgId)));
      // In the order the operator named them (the reset answers in its own).
      const reset = names.filter((n) => wasReset.has(n));
      const skipped = names.filter((n) => !reset.includes(n));
      if (!reset.length) throw new StateConflictError(`none of the ${names.length} named orgs is failed; only failed orgs are retried`, 'not_retryable');
      await tracker.readyHolding(ctx.db, type, reset);
      const concurrency = req.body.concurrency ?? 8;
      const { run } = await manager.startRun(ctx, type, { count: 'all', orgs: reset, concurrency, expectRouting: 'any' });
      await audit(ctx.db, actorOf(req), 'run.retry', { migration_type: type, run_id: run.id, orgs: reset, skipped, concurrency });
      return reply.code(202).send({ run_id: run.id, orgs: run.enqueued, skipped });
    },
  );

  app.post(
    '/:type/halt',
    {
      schema: {
        summary: 'No new org starts anywhere; running ones finish (409 when nothing runs)',
        params: TypeParams,
        response: replies(Halted),
      },
    },
    async (req) => {
      const run = await manager.haltRun(ctx, migrationType(req.params.type), actorOf(req));
      await audit(ctx.db, actorOf(req), 'run.halt', { migration_type: req.params.type, run_id: run.id });
      return { run_id: run.id, state: runState(run) };
    },
  );

  app.put(
    '/:type/concurrency',
    {
      schema: {
        summary: 'Orgs in flight at once, fleet-wide, from now on',
        params: TypeParams,
        body: ConcurrencyBody,
        response: replies(Resized),
      },
    },
    async (req) => {
      const type = migrationType(req.params.type);
      await manager.setConcurrency(ctx, type, req.body.concurrency);
      await audit(ctx.db, actorOf(req), 'run.concurrency', { migration_type: type, concurrency: req.body.concurrency });
      return { concurrency: req.body.concurrency };
    },
  );
}
