// Every route but the health probes needs the bearer token. A browser opening
// Bull Board passes it once as ?token= and gets a cookie for the rest.
import { timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';

const OPEN = new Set(['/healthz', '/readyz']);
const COOKIE = 'mover_token';

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieToken(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export default fp(async function auth(app: FastifyInstance, opts: { token: string }) {
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0];
    if (OPEN.has(path)) return;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer && same(bearer, opts.token)) return;
    if (path.startsWith('/admin/queues')) {
      const queryToken = (req.query as Record<string, string> | undefined)?.token;
      if (queryToken && same(queryToken, opts.token)) {
        reply.header('set-cookie', `${COOKIE}=${encodeURIComponent(queryToken)}; Path=/admin/queues; HttpOnly; SameSite=Strict`);
        return;
      }
      const fromCookie = cookieToken(req);
      if (fromCookie && same(fromCookie, opts.token)) return;
    }
    return reply.code(401).send({ error: 'unauthorized', message: 'missing or wrong bearer token (Authorization: Bearer <MOVER_API_TOKEN>)' });
  });
});
