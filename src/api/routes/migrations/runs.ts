// /migrations/:type runs (legacy mover_manager: migrate/3, status, halt, workers): start, status, halt, concurrency, and the latest run's failures by step.
import { audit } from '../../../db/audit.js';
import { StateConflictError } from '../../../errors.js';
import { actorOf, orgsFromText } from '../../operator-input.js';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import * as manager from '../../../runs/manager.js';
import { failuresByStep } from '../../../db/org-states.js';
import { latestRun } from '../../../db/runs.js';
import { runMinutes } from '../../../db/run-minutes.js';
import { PHASE_2_REVERT } from '../../../queue-names.js';
import { Concurrency, Json, migrationType, OrgNames, replies, Reply, TypeParams } from '../../schemas.js';

const StartBody = Type.Object(
  { count: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('all')]), concurrency: Type.Optional(Concurrency) },
  { additionalProperties: false },
);
// writeBack: what changed on SQL since an org migrated is written back to
// CouchDB before it is reverted; without it, such an org is refused.
const WriteBack = Type.Optional(Type.Boolean());
const RevertBody = Type.Union([
  Type.Object({ orgs: OrgNames, concurrency: Type.Optional(Concurrency), writeBack: WriteBack }, { additionalProperties: false }),
  Type.Object(
    { count: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('all')]), concurrency: Type.Optional(Concurrency), writeBack: WriteBack },
    { additionalProperties: false },
  ),
]);
const REVERT = PHASE_2_REVERT;
const Series = Reply({
  runId: Json('the latest run, or null'),
  minutes: Json('[{minute, orgs_per_s, finished, failed, in_flight, dark_max, dark_p99_ms}], oldest first'),
});
const Failures = Reply({ runId: Json('the latest run, or null'), by_step: Json('{step: failed orgs} of the latest run') });
const ConcurrencyBody = Type.Object({ concurrency: Concurrency }, { additionalProperties: false });
const Started = Reply({
  runId: Type.String(),
  orgs: Type.Integer({ description: 'orgs the run takes' }),
  skipped: Type.Optional(Type.Array(Type.String(), { description: 'revert: named orgs that are not completed' })),
});
const Count = Json('a number, or "all"');
const Status = Reply(
  {
    runId: Type.Union([Type.String(), Type.Null()]),
    state: Type.Union([Type.Literal('ready'), Type.Literal('working'), Type.Literal('halting')]),
    orgs_completed: Type.Integer({ description: 'orgs of the run whose job finished, succeeded or failed' }),
    objects_remaining: Count,
    objects_requested: Count,
    objects_in_progress: Type.Integer(),
    objects_failed: Type.Integer(),
    fatal_stop: Type.Boolean(),
    orgs_dark: Type.Union([Type.Integer(), Type.Null()]),
    dark: Type.Optional(
      Json(
        'how long its finished orgs were dark, from the write that set 503_mode to the one that cleared it: {orgs, p50_ms, p99_ms, max_ms, past_drain_p99_ms, saturated} (saturated: p99 more than 500 ms past the drain wait)',
      ),
    ),
    breaker: Type.Optional(Json('{state: closed|open|half_open, kind, reason, since, trips}')),
    concurrency: Type.Optional(Type.Integer()),
    stop_reason: Type.Optional(Json('why the run stopped, or null')),
    started_at: Type.Optional(Type.String()),
    finished_at: Type.Optional(Json('ISO date-time or null')),
    params: Type.Optional(Json('revert: its options')),
    not_reverted: Type.Optional(Json('revert: the orgs refused or failed, with why')),
    dry_run: Type.Optional(Type.Boolean({ description: 'purge: whether it only reported' })),
    purged: Type.Optional(Type.Integer({ description: 'purge: orgs whose migrated documents were removed from CouchDB' })),
    docs_removed: Type.Optional(Type.Integer({ description: 'purge: documents removed' })),
    would_purge: Type.Optional(Type.Integer({ description: 'purge, dry run: orgs it would purge' })),
    would_remove_docs: Type.Optional(Type.Integer({ description: 'purge, dry run: documents it would remove' })),
    unverified_count: Type.Optional(Type.Integer({ description: 'purge: orgs left as they were (they did not verify, or Chef serves them from CouchDB)' })),
    unverified: Type.Optional(Json('purge: the first 200 of those orgs, by name: [{org, reason}]')),
  },
  'The latest run of the type (legacy mover_manager status)',
);

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
      return reply.code(202).send({ runId: run.id, orgs: run.enqueued });
    },
  );

  // Revert takes org names, or a count of completed orgs, and writeBack.
  app.post(
    `/${REVERT}/start`,
    {
      schema: { summary: 'Revert completed orgs to CouchDB: named ones, or a count of them by org_id', body: RevertBody, response: replies(Started, 202) },
      preValidation: orgsFromText,
    },
    async (req, reply) => {
      const body = req.body;
      const writeBack = body.writeBack === true;
      const which = 'orgs' in body ? { count: 'all' as const, orgs: body.orgs } : { count: body.count };
      const { run, skipped } = await manager.startRun(ctx, REVERT, { ...which, concurrency: body.concurrency ?? 8, params: { writeBack } });
      await audit(ctx.db, actorOf(req), 'run.start', {
        migration_type: REVERT,
        run_id: run.id,
        orgs: 'orgs' in body ? body.orgs : body.count,
        skipped,
        writeBack,
      });
      return reply.code(202).send({ runId: run.id, orgs: run.enqueued, skipped });
    },
  );

  app.get('/:type/status', { schema: { summary: 'The latest run of the type', params: TypeParams, response: replies(Status) } }, async (req) => {
    return manager.runStatus(ctx, migrationType(req.params.type));
  });

  app.post(
    '/:type/halt',
    {
      schema: {
        summary: 'No new org starts anywhere; running ones finish (409 when nothing runs)',
        params: TypeParams,
        response: replies(Reply({ runId: Type.String(), state: Type.String() })),
      },
    },
    async (req) => {
      const run = await manager.haltRun(ctx, migrationType(req.params.type), actorOf(req));
      await audit(ctx.db, actorOf(req), 'run.halt', { migration_type: req.params.type, run_id: run.id });
      return { runId: run.id, state: run.state };
    },
  );

  app.put(
    '/:type/concurrency',
    {
      schema: {
        summary: 'Orgs in flight at once, fleet-wide, from now on',
        params: TypeParams,
        body: ConcurrencyBody,
        response: replies(Reply({ concurrency: Type.Integer() })),
      },
    },
    async (req) => {
      const type = migrationType(req.params.type);
      await manager.setConcurrency(ctx, type, req.body.concurrency);
      await audit(ctx.db, actorOf(req), 'run.concurrency', { migration_type: type, concurrency: req.body.concurrency });
      return { concurrency: req.body.concurrency };
    },
  );

  app.get(
    '/:type/failures',
    { schema: { summary: "The latest run's failed orgs by the step they failed at", params: TypeParams, response: replies(Failures) } },
    async (req) => {
      const run = await latestRun(ctx.db, migrationType(req.params.type));
      return { runId: run?.id ?? null, by_step: run ? await failuresByStep(ctx.db, run.id) : {} };
    },
  );

  app.get(
    '/:type/series',
    { schema: { summary: "The latest run minute by minute (the runbook page's charts)", params: TypeParams, response: replies(Series) } },
    async (req) => {
      const run = await latestRun(ctx.db, migrationType(req.params.type));
      return { runId: run?.id ?? null, minutes: run ? await runMinutes(ctx.db, run.id) : [] };
    },
  );
}
