// /survey: the read-only estate survey (docs/api.md, "Survey"; src/jobs/estate_survey.ts): start and halt it,
// its totals and window estimate, its orgs a page at a time (all, or those with one finding), and every org as CSV.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../../db/audit.js';
import { latestRun } from '../../db/runs.js';
import { surveyPage } from '../../db/survey.js';
import { InvalidInputError } from '../../errors.js';
import { FINDINGS } from '../../migration/survey-findings.js';
import { ESTATE_SURVEY } from '../../queue-names.js';
import { DEFAULT_SURVEY_CONCURRENCY, haltSurvey, startSurvey, surveyState, surveyStatus } from '../../runs/survey.js';
import { actorOf } from '../operator-input.js';
import { Concurrency, Json, NextCursor, Nullable, replies, Reply, SurveyedOrg, Text, Time } from '../schemas.js';
import { surveyCsv } from '../survey-csv.js';

const StartBody = Type.Object({ concurrency: Type.Optional(Concurrency) }, { additionalProperties: false });
const Digits = (n: number) => Type.Optional(Type.String({ pattern: `^[0-9]{1,${n}}$` }));
const StatusQuery = Type.Object({ concurrency: Digits(4), drain_wait_ms: Digits(6), sleep_time_ms: Digits(7) }, { additionalProperties: false });
const OrgsQuery = Type.Object(
  {
    finding: Type.Optional(Type.Union(FINDINGS.map((f) => Type.Literal(f)))),
    cursor: Type.Optional(Text({ maxLength: 255 })),
    limit: Digits(5),
  },
  { additionalProperties: false },
);
export const Halted = Reply({ run_id: Type.String(), state: Type.String({ description: 'running while its batches being read finish' }) });
export const Started = Reply({ run_id: Type.String(), orgs: Type.Integer({ description: 'orgs the survey takes: the snapshot’s, pre-created ones aside' }) });
export const SurveyStatus = Reply(
  {
    state: Type.Union(['not_started', 'running', 'completed', 'failed', 'halted'].map((s) => Type.Literal(s))),
    run_id: Nullable('the survey run, or null before the first'),
    started_at: Time(),
    finished_at: Time('ISO date-time or null: how old the survey is'),
    orgs_surveyed: Type.Integer(),
    orgs_total: Type.Integer(),
    totals: Type.Record(Type.String(), Type.Number(), { description: '{finding: orgs with it}, every finding named' }),
    largest: Type.Array(Type.Pick(SurveyedOrg, ['org_name', 'org_id', 'containers', 'groups', 'documents', 'bytes', 'copy_ms']), {
      description: 'the largest orgs by bytes',
    }),
    estimate: Type.Object(
      {
        concurrency: Type.Integer(),
        drain_wait_ms: Type.Integer(),
        seconds: Type.Number({ description: 'the migration window; 0 while no org still to migrate was found' }),
        inputs: Type.Object({
          orgs: Type.Integer(),
          copy_ms_mean: Nullable(undefined, Type.Number()),
          copy_ms_total: Type.Number(),
          sleep_time_ms: Type.Integer(),
          cycle_ms: Nullable(undefined, Type.Number()),
          pacing_window_ms: Type.Number(),
          bound_by: Nullable('cycle or pacing'),
          formula: Type.String(),
        }),
      },
      { description: 'the migration window, for the given (or current) concurrency, drain wait and sleep time' },
    ),
    skipped_documents: Type.Record(Type.String(), Type.Number(), { description: '{rule: documents the migration would skip by it}' }),
    sizes: Type.Object(
      { containers: Type.Number(), groups: Type.Number(), documents: Type.Number(), bytes: Type.Number() },
      { description: 'of the orgs surveyed' },
    ),
    copy_ms_mean: Nullable('mean copy time of an org', Type.Number()),
    concurrency: Nullable(undefined, Type.Integer()),
    stop_reason: Nullable('why it stopped, or how it ended'),
    breaker: Type.Union([Type.Object({ state: Type.String(), reason: Nullable(), since: Time() }), Type.Null()]),
    csv: Type.String(),
  },
  'The latest estate survey',
);
export const SurveyPage = Reply({
  orgs: Type.Array(SurveyedOrg),
  next_cursor: NextCursor('the last org_name'),
});

/** A whole number from the query within bounds, else a 400 naming the field. */
function bounded(field: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (n < min || n > max) throw new InvalidInputError(`querystring/${field} must be ${min} to ${max}`);
  return n;
}

export default async function survey(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { ctx } = app;

  app.post(
    '/survey/start',
    {
      schema: {
        summary: `Survey every org read-only (${DEFAULT_SURVEY_CONCURRENCY} batches of orgs at once fleet-wide unless told); 409 while one runs`,
        body: StartBody,
        response: replies(Started, 202),
      },
      // No body at all (curl -X POST) is the same as {}.
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req, reply) => {
      const run = await startSurvey(ctx, req.body.concurrency);
      await audit(ctx.db, actorOf(req), 'survey.start', { run_id: run.id, orgs: run.enqueued, concurrency: run.concurrency });
      return reply.code(202).send({ run_id: run.id, orgs: run.enqueued });
    },
  );

  app.post(
    '/survey/halt',
    {
      schema: {
        summary: 'Survey no more batches; those being read finish (409 when none runs)',
        response: replies(Halted),
      },
    },
    async (req) => {
      const run = await haltSurvey(ctx, actorOf(req));
      await audit(ctx.db, actorOf(req), 'survey.halt', { run_id: run.id });
      return { run_id: run.id, state: surveyState(run) };
    },
  );

  app.get(
    '/survey',
    {
      schema: {
        summary: 'The latest survey: state, totals by finding, largest orgs, the window estimate',
        querystring: StatusQuery,
        response: replies(SurveyStatus),
      },
    },
    async (req) =>
      surveyStatus(ctx, {
        concurrency: bounded('concurrency', req.query.concurrency, 1, 1000),
        drainWaitMs: bounded('drain_wait_ms', req.query.drain_wait_ms, 0, 600_000),
        sleepTimeMs: bounded('sleep_time_ms', req.query.sleep_time_ms, 0, 3_600_000),
      }),
  );

  app.get(
    '/survey/orgs',
    {
      schema: {
        summary: "The latest survey's orgs by name, a page; only those with `finding` if given",
        querystring: OrgsQuery,
        response: replies(SurveyPage),
      },
    },
    async (req) => {
      const limit = bounded('limit', req.query.limit, 1, 10_000) ?? 100;
      const run = await latestRun(ctx.db, ESTATE_SURVEY);
      const orgs = run ? await surveyPage(ctx.db, run.id, { finding: req.query.finding, after: req.query.cursor, limit }) : [];
      return { orgs, next_cursor: orgs.length === limit ? orgs[orgs.length - 1].org_name : null };
    },
  );

  app.get(
    '/survey/orgs.csv',
    {
      schema: {
        summary: "The latest survey's orgs, one row each (text/csv, streamed)",
        produces: ['text/csv'],
        response: { 200: Json('text/csv, a header line and then a row per org (not JSON)') },
      },
    },
    async (_req, reply) => {
      const run = await latestRun(ctx.db, ESTATE_SURVEY);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="survey-${run?.id ?? 'none'}.csv"`)
        .send(surveyCsv(ctx.db, run?.id ?? null));
    },
  );
}
