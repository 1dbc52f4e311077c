import { audit } from '../../db/audit.js';
import { actorOf } from '../operator-input.js';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { replies, Reply } from '../schemas.js';
import { getSettings, SAFE_DRAIN_WAIT_MS, setSetting } from '../../db/settings.js';
import { InvalidInputError } from '../../errors.js';
import { setDrainWait, setSleepTime } from '../../runs/manager.js';

const Ms = Type.Object({ ms: Type.Integer({ minimum: 0, maximum: 3_600_000 }) }, { additionalProperties: false });
const DrainWait = Type.Object(
  {
    ms: Type.Integer({ minimum: 0, maximum: 600_000 }),
    // Below the runbook's 5 s, writes the Chef API accepted just before 503 may
    // land after the copy: mover then copies again or fails the org, but an
    // operator lowers it knowing that.
    acknowledge_risk: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const FailureBreaker = Type.Object(
  {
    // The run halts itself when more than this share of its last `window` finished orgs failed on their data.
    share: Type.Number({ minimum: 0, maximum: 1 }),
    window: Type.Integer({ minimum: 1, maximum: 100_000 }),
  },
  { additionalProperties: false },
);
const Breaker = Type.Object(
  {
    // An open infrastructure breaker waits this long before probing the stores, then needs them answering for stable_ms.
    cool_down_ms: Type.Integer({ minimum: 0, maximum: 3_600_000 }),
    stable_ms: Type.Integer({ minimum: 0, maximum: 3_600_000 }),
  },
  { additionalProperties: false },
);

const CouchdbBudget = Type.Object(
  {
    // The live-service guard (src/runs/couchdb-guard.ts) slows a run's starts while CouchDB's p99 request time is over this; 0 turns it off.
    p99_ms: Type.Integer({ minimum: 0, maximum: 600_000 }),
  },
  { additionalProperties: false },
);

export const Shown = Reply({
  sleep_time_ms: Type.Integer({ description: 'pacing of org starts (legacy sleep_time)' }),
  drain_wait_ms: Type.Integer({ description: 'wait after an org goes dark, before the copy' }),
  dry_run: Type.Boolean({ description: 'MOVER_DRY_RUN: darklaunch writes are logged, not made' }),
  failure_breaker: FailureBreaker,
  breaker: Breaker,
  store_outage_grace_ms: Type.Integer({ description: 'how long a store may stay away before the run breaker opens' }),
  couchdb_budget_p99_ms: Type.Integer({ description: "the live-service guard's budget for CouchDB's p99 request time; 0: no guard" }),
});

export default async function settings(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { ctx } = app;
  const show = async () => {
    const s = await getSettings(ctx.db);
    return {
      sleep_time_ms: s.sleepTimeMs,
      drain_wait_ms: s.drainWaitMs,
      dry_run: ctx.config.dryRun,
      failure_breaker: { share: s.failureBreakerShare, window: s.failureBreakerWindow },
      breaker: { cool_down_ms: s.breakerCoolDownMs, stable_ms: s.breakerStableMs },
      store_outage_grace_ms: ctx.config.storeOutageGraceMs,
      couchdb_budget_p99_ms: s.couchdbBudgetP99Ms,
    };
  };

  app.get('/settings', { schema: { summary: 'Pacing, drain wait, dry run, breakers', response: replies(Shown) } }, show);

  app.put(
    '/settings/sleep-time',
    { schema: { summary: 'Pacing of org starts (the queue rate limit); 0 removes it', body: Ms, response: replies(Shown) } },
    async (req) => {
      const before = await getSettings(ctx.db);
      await setSleepTime(ctx, req.body.ms);
      await audit(ctx.db, actorOf(req), 'settings.sleep_time', { from: before.sleepTimeMs, to: req.body.ms });
      return show();
    },
  );

  app.put(
    '/settings/drain-wait',
    { schema: { summary: 'The drain wait after an org goes dark; below 5000 ms needs acknowledge_risk', body: DrainWait, response: replies(Shown) } },
    async (req) => {
      const { ms, acknowledge_risk } = req.body;
      if (ms < SAFE_DRAIN_WAIT_MS && acknowledge_risk !== true) {
        throw new InvalidInputError(
          `acknowledge_risk: a drain wait below ${SAFE_DRAIN_WAIT_MS} ms (the runbook's sleep_time) leaves less time for writes in flight at the 503 switch to land; send "acknowledge_risk": true to set ${ms} ms`,
        );
      }
      const before = await getSettings(ctx.db);
      await setDrainWait(ctx, ms);
      if (ms < SAFE_DRAIN_WAIT_MS) req.log.warn({ drain_wait_ms: ms }, 'drain wait set below the runbook value');
      await audit(ctx.db, actorOf(req), 'settings.drain_wait', { from: before.drainWaitMs, to: ms, ...(acknowledge_risk ? { acknowledge_risk } : {}) });
      return show();
    },
  );

  app.put(
    '/settings/failure-breaker',
    { schema: { summary: 'When too many data failures halt a run', body: FailureBreaker, response: replies(Shown) } },
    async (req) => {
      const before = await getSettings(ctx.db);
      await setSetting(ctx.db, 'failureBreakerShare', req.body.share);
      await setSetting(ctx.db, 'failureBreakerWindow', req.body.window);
      await audit(ctx.db, actorOf(req), 'settings.failure_breaker', {
        from: { share: before.failureBreakerShare, window: before.failureBreakerWindow },
        to: req.body,
      });
      return show();
    },
  );

  app.put(
    '/settings/breaker',
    { schema: { summary: 'How an open infrastructure breaker probes and closes', body: Breaker, response: replies(Shown) } },
    async (req) => {
      const before = await getSettings(ctx.db);
      await setSetting(ctx.db, 'breakerCoolDownMs', req.body.cool_down_ms);
      await setSetting(ctx.db, 'breakerStableMs', req.body.stable_ms);
      await audit(ctx.db, actorOf(req), 'settings.breaker', {
        from: { cool_down_ms: before.breakerCoolDownMs, stable_ms: before.breakerStableMs },
        to: req.body,
      });
      return show();
    },
  );

  app.put(
    '/settings/couchdb-budget',
    {
      schema: {
        summary: "The live-service guard's budget: CouchDB's p99 request time the fleet slows its starts to keep under; 0 turns the guard off",
        body: CouchdbBudget,
        response: replies(Shown),
      },
    },
    async (req) => {
      const before = await getSettings(ctx.db);
      await setSetting(ctx.db, 'couchdbBudgetP99Ms', req.body.p99_ms);
      await audit(ctx.db, actorOf(req), 'settings.couchdb_budget', { from: before.couchdbBudgetP99Ms, to: req.body.p99_ms });
      return show();
    },
  );
}
