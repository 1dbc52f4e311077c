import { audit } from '../../db/audit.js';
import { actorOf } from '../operator-input.js';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { getSettings, setSetting } from '../../db/settings.js';
import { setSleepTime } from '../../runs/manager.js';

const Ms = Type.Object({ ms: Type.Integer({ minimum: 0, maximum: 3_600_000 }) }, { additionalProperties: false });
type MsReq = { Body: Static<typeof Ms> };

export default async function settings(app: FastifyInstance) {
  const { ctx } = app;
  const show = async () => {
    const s = await getSettings(ctx.db);
    return { sleepTimeMs: s.sleepTimeMs, drainWaitMs: s.drainWaitMs, dryRun: ctx.config.dryRun };
  };

  app.get('/settings', show);

  app.put<MsReq>('/settings/sleep-time', { schema: { body: Ms } }, async (req) => {
    const before = await getSettings(ctx.db);
    await setSleepTime(ctx, req.body.ms);
    await audit(ctx.db, actorOf(req), 'settings.sleep_time', { from: before.sleepTimeMs, to: req.body.ms });
    return show();
  });

  app.put<MsReq>('/settings/drain-wait', { schema: { body: Ms } }, async (req) => {
    const before = await getSettings(ctx.db);
    await setSetting(ctx.db, 'drainWaitMs', req.body.ms);
    await audit(ctx.db, actorOf(req), 'settings.drain_wait', { from: before.drainWaitMs, to: req.body.ms });
    return show();
  });
}
