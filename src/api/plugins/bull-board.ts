// Bull Board at /admin/queues: every queue of the fleet, behind the token check.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.js';

export const BULL_BOARD_PATH = '/admin/queues';

export default async function bullBoard(app: FastifyInstance, opts: { ctx: Context }) {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({ queues: Object.values(opts.ctx.queues).map((q) => new BullMQAdapter(q)), serverAdapter });
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}
