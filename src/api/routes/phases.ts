// The runbook as four phases (docs/api.md, Phases; docs/domain.md, section 10).
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../../db/audit.js';
import * as db from '../../db/phases.js';
import { ForbiddenError, InvalidInputError, StateConflictError, NotFoundError } from '../../errors.js';
import { phaseDef, PHASES } from '../../phases/definitions.js';
import { actorOf } from '../operator-input.js';
import { Concurrency, Detail, Nullable, OrgNames, replies, Reply, Text, Time } from '../schemas.js';

// again: a completed phase runs again only with it (otherwise 409 phase_completed, saying what it would do).
const Again = Type.Optional(Type.Boolean({ description: 'run a completed phase again' }));
const BODIES: Record<number, TSchema> = {
  1: Type.Object({ orgs: OrgNames, concurrency: Type.Optional(Concurrency), again: Again }, { additionalProperties: false }),
  2: Type.Object({ again: Again }, { additionalProperties: false }),
  3: Type.Object(
    {
      concurrency: Type.Optional(Concurrency),
      sleep_time_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000, description: 'sets the sleep time; without it the current one stands' })),
      again: Again,
    },
    { additionalProperties: false },
  ),
  4: Type.Object({ confirm: Type.Literal('purge-couchdb-data'), dry_run: Type.Optional(Type.Boolean()), again: Again }, { additionalProperties: false }),
};
const PhaseParams = Type.Object({ n: Type.String({ pattern: '^[0-9]+$' }) });
const StepParams = Type.Object({ n: Type.String({ pattern: '^[0-9]+$' }), id: Type.String({ maxLength: 10 }) });
const Step = Reply({
  id: Type.String({ description: "the runbook's numbering, 1.1 … 4.x" }),
  title: Type.String(),
  kind: Type.Union([Type.Literal('auto'), Type.Literal('manual')]),
  state: Type.String({ description: 'pending, running, waiting_confirmation, done, failed or skipped' }),
  started_at: Time(),
  finished_at: Time(),
  detail: Detail("what the step reports: counts, run_id, error, a manual step's command, the breaker, a note"),
  confirmed_by: Type.Optional(Type.String({ description: 'a manual step: who confirmed it' })),
  confirmed_at: Type.Optional(Time('a manual step: when it was confirmed')),
});
export const Phase = Reply({
  phase: Type.Integer(),
  title: Type.String(),
  state: Type.String({ description: 'not_started, running, waiting, completed, failed or halted' }),
  params: Detail('what the phase was started with'),
  started_by: Nullable('who started it, or null'),
  started_at: Time(),
  finished_at: Time(),
  steps: Type.Array(Step),
});
export const Phases = Reply({ phases: Type.Array(Phase) });
export const PhaseStarted = Reply({
  phase: Type.Integer(),
  state: Type.String(),
  resumed: Type.Boolean({ description: 'a failed or halted phase goes on from its failed step' }),
  again: Type.Boolean({ description: 'a completed phase started again' }),
  settings: Type.Object(
    {
      sleep_time_ms: Type.Optional(Type.Integer({ description: 'phase 3: the sleep time it sets (only when the body names one)' })),
      concurrency: Type.Optional(
        Type.Integer({ description: "phases 1 and 3: its run's concurrency (only when the body names one; else the current one stands)" }),
      ),
    },
    { description: 'the settings this start changes; nothing else is changed' },
  ),
});

/** What a start changes beyond its own phase: only what the body names. */
function settingsOf(params: Record<string, unknown>) {
  return {
    ...(typeof params.sleep_time_ms === 'number' ? { sleep_time_ms: params.sleep_time_ms } : {}),
    ...(typeof params.concurrency === 'number' ? { concurrency: params.concurrency } : {}),
  };
}
const Confirm = Type.Object(
  {
    by: Type.Optional(
      Text({ minLength: 1, maxLength: 100, description: "who did the step; with named operators, the signed-in operator's own name (the default)" }),
    ),
    note: Type.Optional(Text({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);

/**
 * Who confirms: with named operators, the one signed in (another name is a
 * 403: the record must say who really confirmed); with the one shared token
 * the api cannot tell, so `by` must name them.
 */
function confirmer(req: FastifyRequest, by: string | undefined): string {
  if (req.server.operators.named) {
    if (by !== undefined && by !== req.operator)
      throw new ForbiddenError(`by: "${by}" is not the operator signed in (${req.operator}); a confirmation is recorded in the signed-in operator's own name`);
    return req.operator!;
  }
  if (by === undefined) throw new InvalidInputError('by: name who did the step (the api is shared by one token, so it cannot tell)');
  return by;
}

function phaseNumber(raw: string): number {
  const n = Number(raw);
  if (!phaseDef(n)) throw new NotFoundError(`no phase ${raw}; phases are 1 to 4`, 'unknown_phase');
  return n;
}

async function view(app: FastifyInstance, n: number) {
  const def = phaseDef(n)!;
  const phase = await db.getPhase(app.ctx.db, n);
  const rows = new Map((await db.getSteps(app.ctx.db, n)).map((s) => [s.id, s]));
  return {
    phase: n,
    title: def.title,
    state: phase.state,
    params: phase.params,
    started_by: phase.started_by,
    started_at: phase.started_at,
    finished_at: phase.finished_at,
    steps: def.steps.map((s) => {
      const r = rows.get(s.id);
      return {
        id: s.id,
        title: s.title,
        kind: s.mode,
        state: r?.state ?? 'pending',
        started_at: r?.started_at ?? null,
        finished_at: r?.finished_at ?? null,
        detail: { ...(s.command ? { command: s.command } : {}), ...(r?.detail ?? {}) },
        ...(r?.confirmed_by ? { confirmed_by: r.confirmed_by, confirmed_at: r.confirmed_at } : {}),
      };
    }),
  };
}

export default async function phases(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/phases', { schema: { summary: 'The four phases of the runbook', response: replies(Phases) } }, async () => ({
    phases: await Promise.all(PHASES.map((p) => view(app, p.n))),
  }));

  app.get('/phases/:n', { schema: { summary: 'One phase and its steps', params: PhaseParams, response: replies(Phase) } }, async (req) =>
    view(app, phaseNumber(req.params.n)),
  );

  for (const def of PHASES) {
    fastify.post(
      `/phases/${def.n}/start`,
      { schema: { summary: `Start or resume phase ${def.n}: ${def.title}`, body: BODIES[def.n], response: replies(PhaseStarted, 202) } },
      async (req, reply) => {
        const actor = actorOf(req);
        const { again: asked, ...params } = (req.body ?? {}) as Record<string, unknown>;
        // Whether it was completed (and so started again) is read under the phase's lock, in startPhase.
        const { phase, resumed, again } = await db.startPhase(app.ctx.db, def.n, params, actor, def.steps, { asked: asked === true, would: def.again });
        const settings = settingsOf(params);
        await audit(app.ctx.db, actor, again ? 'phase.again' : resumed ? 'phase.resume' : 'phase.start', { phase: def.n, params, settings });
        return reply.code(202).send({ phase: def.n, state: phase.state, resumed, again, settings });
      },
    );
  }
  app.post(
    '/phases/:n/start',
    { schema: { summary: 'A phase number that does not exist: 404', params: PhaseParams, response: replies(PhaseStarted, 202) } },
    async (req) => {
      phaseNumber(req.params.n);
      throw new NotFoundError(`no phase ${req.params.n}`);
    },
  );

  app.post(
    '/phases/:n/steps/:id/confirm',
    { schema: { summary: 'Say a manual step was done (409 unless it is waiting_confirmation)', params: StepParams, body: Confirm, response: replies(Phase) } },
    async (req) => {
      const n = phaseNumber(req.params.n);
      const stepDef = phaseDef(n)!.steps.find((s) => s.id === req.params.id);
      if (!stepDef) throw new NotFoundError(`phase ${n} has no step ${req.params.id}`, 'unknown_step');
      const by = confirmer(req, req.body.by);
      const ok = await db.confirmStep(app.ctx.db, n, stepDef.id, by, req.body.note, stepDef.action ? 'running' : 'done');
      if (!ok) throw new StateConflictError(`step ${stepDef.id} is not waiting for confirmation`, 'not_waiting');
      await db.setPhaseState(app.ctx.db, n, 'running');
      await audit(app.ctx.db, by, 'phase.confirm', { phase: n, step: stepDef.id, note: req.body.note ?? null });
      return view(app, n);
    },
  );
}
