// Hands the process's store connections to every route as app.ctx.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.js';

declare module 'fastify' {
  interface FastifyInstance {
    ctx: Context;
  }
}

export default fp(async function context(app: FastifyInstance, opts: { ctx: Context }) {
  app.decorate('ctx', opts.ctx);
});
