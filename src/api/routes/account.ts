import { audit } from '../../db/audit.js';
import { actorOf } from '../operator-input.js';
import type { FastifyInstance } from 'fastify';
import { snapshotStatus } from '../../db/account-snapshot.js';
import { type as ACCOUNT_REFRESH } from '../../jobs/account_refresh.js';

export default async function account(app: FastifyInstance) {
  app.post('/account/refresh', async (req, reply) => {
    const queue = app.ctx.queues[ACCOUNT_REFRESH];
    // One refresh at a time across the fleet: a second request joins the one already queued or running.
    const [pending] = await queue.getJobs(['waiting', 'active', 'prioritized'], 0, 0);
    const job = pending ?? (await queue.add(ACCOUNT_REFRESH, {}, { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } }));
    await audit(app.ctx.db, actorOf(req), 'account.refresh', { job_id: job.id });
    return reply.code(202).send({ jobId: job.id });
  });

  app.get('/account', async () => {
    const status = await snapshotStatus(app.ctx.db);
    const pending = await app.ctx.queues[ACCOUNT_REFRESH].getJobCountByTypes('waiting', 'active', 'prioritized');
    return pending > 0 ? { ...status, state: 'refreshing' } : status;
  });
}
