// The runbook as four phases (docs/api.md, Phases; docs/domain.md, section 10).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { audit } from '../../db/audit.js';
import * as db from '../../db/phases.js';
import { StateConflictError, NotFoundError } from '../../errors.js';
import { phaseDef, PHASES } from '../../phases/definitions.js';
import { actorOf } from '../operator-input.js';
import { Concurrency, OrgNames } from '../schemas.js';

const BODIES: Record<number, TSchema> = {
  1: Type.Object({ orgs: OrgNames, concurrency: Type.Optional(Concurrency) }, { additionalProperties: false }),
  2: Type.Object({}, { additionalProperties: false }),
  3: Type.Object({ concurrency: Type.Optional(Concurrency), sleepTimeMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })) }, { additionalProperties: false }),
  4: Type.Object({ confirm: Type.Literal('purge-couchdb-data'), dryRun: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
};
const PhaseParams = Type.Object({ n: Type.String({ pattern: '^[0-9]+$' }) });
const StepParams = Type.Object({ n: Type.String({ pattern: '^[0-9]+$' }), id: Type.String({ maxLength: 10 }) });
const Confirm = Type.Object({ by: Type.String({ minLength: 1, maxLength: 100 }), note: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false });

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
    startedAt: phase.started_at,
    finishedAt: phase.finished_at,
    steps: def.steps.map((s) => {
      const r = rows.get(s.id);
      return {
        id: s.id,
        title: s.title,
        kind: s.kind,
        state: r?.state ?? 'pending',
        startedAt: r?.started_at ?? null,
        finishedAt: r?.finished_at ?? null,
        detail: { ...(s.command ? { command: s.command } : {}), ...(r?.detail ?? {}) },
        ...(r?.confirmed_by ? { confirmed_by: r.confirmed_by, confirmed_at: r.confirmed_at } : {}),
      };
    }),
  };
}

export default async function phases(app: FastifyInstance) {
  app.get('/phases', async () => ({ phases: await Promise.all(PHASES.map((p) => view(app, p.n))) }));

  app.get<{ Params: Static<typeof PhaseParams> }>('/phases/:n', { schema: { params: PhaseParams } }, async (req) => view(app, phaseNumber(req.params.n)));

  for (const def of PHASES) {
    app.post<{ Body: Record<string, unknown> }>(`/phases/${def.n}/start`, { schema: { body: BODIES[def.n] } }, async (req, reply) => {
      const actor = actorOf(req);
      const { phase, resumed } = await db.startPhase(app.ctx.db, def.n, req.body ?? {}, actor, def.steps);
      await audit(app.ctx.db, actor, resumed ? 'phase.resume' : 'phase.start', { phase: def.n, params: req.body ?? {} });
      return reply.code(202).send({ phase: def.n, state: phase.state, resumed });
    });
  }
  app.post<{ Params: Static<typeof PhaseParams> }>('/phases/:n/start', { schema: { params: PhaseParams } }, async (req) => {
    phaseNumber(req.params.n);
    throw new NotFoundError(`no phase ${req.params.n}`);
  });

  app.post<{ Params: Static<typeof StepParams>; Body: Static<typeof Confirm> }>(
    '/phases/:n/steps/:id/confirm',
    { schema: { params: StepParams, body: Confirm } },
    async (req) => {
      const n = phaseNumber(req.params.n);
      const stepDef = phaseDef(n)!.steps.find((s) => s.id === req.params.id);
      if (!stepDef) throw new NotFoundError(`phase ${n} has no step ${req.params.id}`, 'unknown_step');
      const ok = await db.confirmStep(app.ctx.db, n, stepDef.id, req.body.by, req.body.note, stepDef.action ? 'running' : 'done');
      if (!ok) throw new StateConflictError(`step ${stepDef.id} is not waiting for confirmation`, 'not_waiting');
      await db.setPhaseState(app.ctx.db, n, 'running');
      await audit(app.ctx.db, req.body.by, 'phase.confirm', { phase: n, step: stepDef.id, note: req.body.note ?? null });
      return view(app, n);
    },
  );
}
