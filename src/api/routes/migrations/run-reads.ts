// /migrations/:type runs, read back: a run's status (legacy mover_manager
// status), the list of runs, a run's failed orgs and its series. Each takes
// ?run_id= for a run before the latest (404 unknown_run for another kind's
// or an unknown one); without it, the latest run.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import * as manager from '../../../runs/manager.js';
import { runState, stopReason, RUN_STATES } from '../../../runs/run-state.js';
import { failedOrgsOfRun, failuresByStep } from '../../../db/org-states.js';
import { listRuns } from '../../../db/runs.js';
import { bucketFor, runSeries } from '../../../db/run-series.js';
import { migrationType, Nullable, replies, Reply, Text, Time, TypeParams } from '../../schemas.js';

const RunId = Type.String({ pattern: '^[0-9]{1,18}$', description: 'a run of this type (GET /migrations/:type/runs); the latest when omitted' });
const Limit = Type.String({ pattern: '^[0-9]{1,4}$', description: 'how many (1 to 1000)' });
const RunQuery = Type.Object({ run_id: Type.Optional(RunId) }, { additionalProperties: false });
const PageQuery = Type.Object(
  { run_id: Type.Optional(RunId), limit: Type.Optional(Limit), cursor: Type.Optional(Text({ maxLength: 255 })) },
  { additionalProperties: false },
);
const RunsQuery = Type.Object(
  { limit: Type.Optional(Limit), cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })) },
  { additionalProperties: false },
);
const State = Type.Union(
  RUN_STATES.map((s) => Type.Literal(s)),
  {
    description:
      'working, halting; once over: completed (every org it took was processed), halted (an operator or its breaker stopped it), failed (it could not go on); not_started when the type never ran',
  },
);
const StopReason = Type.Union([Type.String(), Type.Null()], { description: 'why it stopped, or how it ended; null while it works' });
const NullableId = Type.Union([Type.String(), Type.Null()]);
const limitOf = (raw: string | undefined, fallback: number) => Math.min(Math.max(Number(raw ?? fallback), 1), 1000);

const Count = Type.Union([Type.Integer(), Type.Literal('all')], { description: 'a number, or "all"' });
const Ms = Type.Union([Type.Integer(), Type.Null()]);
const Dark = Type.Object(
  {
    orgs: Type.Integer({ description: 'finished orgs whose dark time was measured' }),
    p50_ms: Ms,
    p99_ms: Ms,
    max_ms: Ms,
    past_drain_p99_ms: Type.Union([Type.Number(), Type.Null()], { description: 'p99 past the drain wait: what the fleet adds to the wait' }),
    saturated: Type.Boolean({ description: 'p99 past the drain wait by more than 1 s and a fifth of the drain wait (src/runs/dark-time.ts)' }),
    saturation: Type.Union([Type.String(), Type.Null()], { description: 'why saturated, and what to do; null when not' }),
  },
  { description: 'how long its finished orgs were dark, from the write that set 503_mode to the one that cleared it' },
);
const Breaker = Type.Object({
  state: Type.Union(['closed', 'open', 'half_open'].map((s) => Type.Literal(s))),
  kind: Type.Union([Type.Literal('infrastructure'), Type.Literal('data'), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  since: Type.Union([Type.String(), Type.Null()]),
  trips: Type.Integer(),
});
const Guard = Type.Object(
  {
    budget_p99_ms: Type.Union([Type.Integer(), Type.Null()], {
      description: 'the CouchDB p99 request time the fleet keeps under (PUT /settings/couchdb-budget); null: no guard',
    }),
    measured_p99_ms: Type.Union([Type.Number(), Type.Null()], { description: "the guard's last figure; null when it had none" }),
    source: Type.Union([Type.String(), Type.Null()], {
      description:
        "couchdb_stats (2.x/3.x's own), couchdb_1x_stats (estimated from mean and deviation), mover_requests (mover's own request times, where CouchDB gives none), or probe (three small requests the guard times, where mover sent too few)",
    }),
    set_concurrency: Type.Integer({ description: 'the concurrency the operator set' }),
    effective_concurrency: Type.Integer({ description: 'what the run may have in flight now: lower while the budget is broken' }),
    reason: Type.Union([Type.String(), Type.Null()], {
      description: 'why the effective concurrency is lower (or why there is no figure); null at the set concurrency',
    }),
    at: Type.Union([Type.String(), Type.Null()], { description: 'when the guard last looked' }),
    couchdb_open_dbs: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description:
          "set when the run's orgs, held open through the drain wait, pass CouchDB's max_dbs_open (checked at start and when the concurrency is set): what it costs and what to raise; null when they fit or the limit could not be read",
      }),
    ),
  },
  { description: 'the live-service guard (src/runs/couchdb-guard.ts): starts slowed while CouchDB breaks its latency budget' },
);
export const Status = Reply(
  {
    run_id: NullableId,
    state: State,
    stop_reason: StopReason,
    orgs_completed: Type.Integer({ description: 'orgs of the run whose job finished, succeeded or failed' }),
    objects_remaining: Count,
    objects_requested: Count,
    objects_in_progress: Type.Integer(),
    objects_failed: Type.Integer(),
    fatal_stop: Type.Boolean(),
    orgs_dark: Type.Union([Type.Integer(), Type.Null()]),
    dark: Type.Optional(Dark),
    breaker: Type.Optional(Breaker),
    concurrency: Type.Optional(Type.Integer()),
    guard: Type.Optional(Guard),
    started_at: Type.Optional(Type.String()),
    finished_at: Type.Optional(Time()),
    write_back: Type.Optional(Type.Boolean({ description: 'revert: whether changes on SQL are written back to CouchDB' })),
    not_reverted: Type.Optional(
      Type.Array(
        Type.Object({ org_name: Type.String(), outcome: Type.String({ description: 'refused or failed' }), detail: Nullable(), differences: Type.Integer() }),
        { description: 'revert: the orgs refused or failed, with why' },
      ),
    ),
    dry_run: Type.Optional(Type.Boolean({ description: 'purge: whether it only reported' })),
    purged: Type.Optional(Type.Integer({ description: 'purge: orgs whose migrated documents were removed from CouchDB' })),
    docs_removed: Type.Optional(Type.Integer({ description: 'purge: documents removed' })),
    would_purge: Type.Optional(Type.Integer({ description: 'purge, dry run: orgs it would purge' })),
    would_remove_docs: Type.Optional(Type.Integer({ description: 'purge, dry run: documents it would remove' })),
    unverified_count: Type.Optional(Type.Integer({ description: 'purge: orgs left as they were (they did not verify, or Chef serves them from CouchDB)' })),
    unverified: Type.Optional(
      Type.Array(Type.Object({ org: Type.String(), reason: Type.String() }), { description: 'purge: the first 200 of those orgs, by name' }),
    ),
  },
  'A run of the type (legacy mover_manager status): the one named by run_id, else the latest',
);
const RunSummary = Type.Object({
  run_id: Type.String(),
  state: State,
  stop_reason: StopReason,
  orgs_in_run: Type.Integer(),
  orgs_finished: Type.Integer(),
  orgs_failed: Type.Integer(),
  concurrency: Type.Integer(),
  started_at: Type.String(),
  finished_at: NullableId,
});
export const Runs = Reply({
  runs: Type.Array(RunSummary),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as cursor for older runs; null at the first' }),
});
const FailedOrg = Type.Object({
  org_name: Type.String(),
  org_id: Type.String(),
  step: Type.Union([Type.String(), Type.Null()], { description: 'the step it failed at' }),
  kind: Type.String({ description: 'data (its own documents) or infrastructure (a store)' }),
  reason: Type.Union([Type.String(), Type.Null()]),
  failed_at: Type.String(),
});
export const Failures = Reply({
  run_id: NullableId,
  by_step: Type.Record(Type.String(), Type.Integer(), { description: 'failed orgs of the run (still failed) by the step they failed at' }),
  orgs: Type.Array(FailedOrg, { description: 'a page of them, by name' }),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as cursor for the next page; null at the last' }),
});
const Point = Type.Object({
  at: Type.String({ description: "the bucket's start" }),
  orgs_per_s: Type.Number({ description: 'orgs finished in the bucket, per second' }),
  finished: Type.Integer(),
  failed: Type.Integer(),
  in_flight: Type.Integer(),
  dark_max: Type.Union([Type.Integer(), Type.Null()], { description: 'the most orgs dark at once in the bucket' }),
  dark_p99_ms: Type.Union([Type.Integer(), Type.Null()], { description: "the run's dark-time p99 so far" }),
});
export const Series = Reply({
  run_id: NullableId,
  started_at: Type.Union([Type.String(), Type.Null()]),
  finished_at: Type.Union([Type.String(), Type.Null()]),
  bucket_s: Type.Integer({ description: "seconds a point covers: sized to the run's length (at most 240 points)" }),
  points: Type.Array(Point, { description: 'oldest first; none after the run ended' }),
});

export default async function runReads(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { ctx } = app;

  app.get(
    '/:type/status',
    { schema: { summary: 'A run of the type: run_id, else the latest', params: TypeParams, querystring: RunQuery, response: replies(Status) } },
    async (req) => manager.runStatus(ctx, migrationType(req.params.type), req.query.run_id),
  );

  app.get(
    '/:type/runs',
    { schema: { summary: 'The runs of the type, newest first, paged', params: TypeParams, querystring: RunsQuery, response: replies(Runs) } },
    async (req) => {
      const limit = limitOf(req.query.limit, 20);
      const rows = await listRuns(ctx.db, migrationType(req.params.type), limit, req.query.cursor ?? null);
      return {
        runs: rows.map((r) => ({
          run_id: r.id,
          state: runState(r),
          stop_reason: stopReason(r),
          orgs_in_run: r.enqueued,
          orgs_finished: r.orgs_finished,
          orgs_failed: r.orgs_failed,
          concurrency: r.concurrency,
          started_at: r.started_at.toISOString(),
          finished_at: r.finished_at?.toISOString() ?? null,
        })),
        next_cursor: rows.length === limit ? rows[rows.length - 1].id : null,
      };
    },
  );

  app.get(
    '/:type/failures',
    {
      schema: {
        summary: "A run's failed orgs: counts by step, and a page of them by name (what failed, where, why, when)",
        params: TypeParams,
        querystring: PageQuery,
        response: replies(Failures),
      },
    },
    async (req) => {
      const run = await manager.runOf(ctx, migrationType(req.params.type), req.query.run_id);
      if (!run) return { run_id: null, by_step: {}, orgs: [], next_cursor: null };
      const limit = limitOf(req.query.limit, 100);
      const orgs = await failedOrgsOfRun(ctx.db, run.id, limit, req.query.cursor ?? null);
      return {
        run_id: run.id,
        by_step: await failuresByStep(ctx.db, run.id),
        orgs,
        next_cursor: orgs.length === limit ? orgs[orgs.length - 1].org_name : null,
      };
    },
  );

  app.get(
    '/:type/series',
    {
      schema: {
        summary: "A run over time, at a resolution sized to its length (the runbook page's charts)",
        params: TypeParams,
        querystring: RunQuery,
        response: replies(Series),
      },
    },
    async (req) => {
      const run = await manager.runOf(ctx, migrationType(req.params.type), req.query.run_id);
      if (!run) return { run_id: null, started_at: null, finished_at: null, bucket_s: bucketFor(0), points: [] };
      const seconds = ((run.finished_at ?? new Date()).getTime() - run.started_at.getTime()) / 1000;
      const bucket = bucketFor(seconds);
      return {
        run_id: run.id,
        started_at: run.started_at.toISOString(),
        finished_at: run.finished_at?.toISOString() ?? null,
        bucket_s: bucket,
        points: await runSeries(ctx.db, run.id, bucket),
      };
    },
  );
}
