// The account snapshot (legacy "build updated dets files").
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../../db/audit.js';
import { snapshotStatus } from '../../db/account-snapshot.js';
import { queueRefresh, type as ACCOUNT_REFRESH } from '../../jobs/account_refresh.js';
import { actorOf } from '../operator-input.js';
import { replies, Reply, Time } from '../schemas.js';

export const Refreshing = Reply({ job_id: Type.String({ description: 'the refresh job (one at a time fleet-wide: a second request joins it)' }) });
export const Account = Reply({
  orgs: Type.Integer(),
  precreated: Type.Integer(),
  authz_joins: Type.Integer(),
  refreshed_at: Time('ISO date-time of the current snapshot, or null'),
  error: Type.Optional(Type.String({ description: 'when the last refresh failed: why' })),
  state: Type.Union([Type.Literal('idle'), Type.Literal('refreshing'), Type.Literal('failed')]),
});

export default async function account(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/account/refresh', { schema: { summary: 'Read opscode_account into a new snapshot', response: replies(Refreshing, 202) } }, async (req, reply) => {
    // One refresh at a time across the fleet: a second request joins the one already queued or running.
    const job = await queueRefresh(app.ctx.queues[ACCOUNT_REFRESH]);
    await audit(app.ctx.db, actorOf(req), 'account.refresh', { job_id: job.id });
    return reply.code(202).send({ job_id: String(job.id) });
  });

  app.get('/account', { schema: { summary: 'The current account snapshot', response: replies(Account) } }, async () => {
    const status = await snapshotStatus(app.ctx.db);
    const pending = await app.ctx.queues[ACCOUNT_REFRESH].getJobCountByTypes('waiting', 'active', 'prioritized');
    return pending > 0 ? { ...status, state: 'refreshing' } : status;
  });
}
