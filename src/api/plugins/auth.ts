// Every route but the health probes and the login form needs an operator's
// token (src/api/operators.ts): as `Authorization: Bearer <token>` (the CLI,
// scripts), or as the HttpOnly cookie a browser gets from the login form
// (Bull Board, the runbook page). Each request is the operator's whose token
// it carries (req.operator), and its audit lines are in that name.
// The token never travels in a URL a browser keeps: the contract's one-time
// `?token=` on Bull Board still works, but answers with the cookie and a
// redirect to the same page without it; and every URL the api logs has any
// token query parameter blanked (src/log.ts scrubs the token from every line).
import { createHmac, timingSafeEqual } from 'node:crypto';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Operators } from '../operators.js';
import { escapeHtml } from '../html.js';

const OPEN = new Set(['/healthz', '/readyz', '/login']);
export const TOKEN_COOKIE = 'mover_token';

declare module 'fastify' {
  interface FastifyRequest {
    /** The operator this request authenticated as. */
    operator?: string;
    /** The token it authenticated with, and how it came: a browser's cookie needs a CSRF token beside it on every change. */
    auth?: { token: string; by: 'bearer' | 'cookie' | 'query' };
  }
  interface FastifyInstance {
    operators: Operators;
  }
}

/**
 * The CSRF token of a signed-in browser: an HMAC of its own operator token,
 * so every api replica computes the same one and no other site can (it
 * cannot read the cookie). The runbook page carries it, and sends it as
 * X-CSRF-Token on every change it asks for.
 */
export const csrfTokenFor = (token: string) => createHmac('sha256', token).update('mover-csrf').digest('hex');
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Where the login form may send the browser on: a path of this api, never another site. */
const safeNext = (next: unknown) => (typeof next === 'string' && /^\/(?!\/)[\w\-./?=&%]*$/.test(next) ? next : '/runbook');

function loginPage(next: string, failed: boolean): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mover: sign in</title>
<style>body{font:15px system-ui,sans-serif;max-width:26rem;margin:4rem auto;color:#222}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}button{font:inherit;margin-top:.8rem;padding:.4rem 1rem}.err{color:#b00}</style></head>
<body><h1>mover</h1>${failed ? '<p class="err">That token is not one of this api\'s operators\' tokens.</p>' : ''}
<form method="post" action="/login"><label for="token">Your operator token (or MOVER_API_TOKEN)</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<input type="hidden" name="next" value="${escapeHtml(next)}"><button type="submit">Sign in</button></form></body></html>`;
}

export default fp(async function auth(app: FastifyInstance, opts: { operators: Operators }) {
  await app.register(cookie);
  await app.register(formbody);
  const { operators } = opts;
  app.decorate('operators', operators);
  app.addHook('onClose', async () => operators.close());
  // The cookie holds the operator's own token: revoked in the operators file, it signs nobody in from the next request on.
  const setCookie = (reply: FastifyReply, token: string) =>
    reply.setCookie(TOKEN_COOKIE, token, { path: '/', httpOnly: true, sameSite: 'strict', secure: 'auto' });
  const signedIn = (req: FastifyRequest, token: string | undefined, by: 'bearer' | 'cookie' | 'query' = 'bearer') => {
    const name = operators.authenticate(token);
    if (name) {
      req.operator = name;
      req.auth = { token: token!, by };
    }
    return name !== null;
  };

  // On top of the SameSite=Strict cookie: a change a browser asks for by its cookie carries the page's CSRF token.
  // (A bearer token is sent by a program that holds it: no other site can make a browser send one.)
  app.addHook('preHandler', async (req, reply) => {
    if (SAFE_METHODS.has(req.method) || req.auth?.by !== 'cookie') return;
    // Bull Board's own UI cannot send the header: its actions (retry, clean) keep the SameSite=Strict cookie's guard alone.
    if (req.url.startsWith('/admin/queues')) return;
    const sent = req.headers[CSRF_HEADER];
    const expected = Buffer.from(csrfTokenFor(req.auth.token));
    const given = Buffer.from(typeof sent === 'string' ? sent : '');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return;
    req.log.warn({ operator: req.operator, url: req.url }, 'a change by cookie without the CSRF token; refused');
    return reply.code(403).send({ error: 'csrf', message: `a change made by a signed-in browser must carry the page's ${CSRF_HEADER} header` });
  });

  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0];
    if (OPEN.has(path)) return;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer && signedIn(req, bearer)) return;
    if (signedIn(req, req.cookies[TOKEN_COOKIE], 'cookie')) return;
    if (path.startsWith('/admin/queues')) {
      const url = new URL(req.url, 'http://mover');
      const queryToken = url.searchParams.get('token');
      if (queryToken && signedIn(req, queryToken, 'query')) {
        // Let in once, by cookie from now on, and out of the address bar and history at once.
        url.searchParams.delete('token');
        return setCookie(reply, queryToken).redirect(url.pathname + url.search, 303);
      }
    }
    const wantsHtml = req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
    if (wantsHtml)
      return reply
        .code(401)
        .type('text/html')
        .send(loginPage(safeNext(req.url.replace(/([?&])token=[^&]*/g, '$1')), false));
    return reply
      .code(401)
      .send({ error: 'unauthorized', message: 'missing or wrong bearer token (Authorization: Bearer <your operator token, or MOVER_API_TOKEN>)' });
  });

  app.get('/login', async (req, reply) => reply.type('text/html').send(loginPage(safeNext((req.query as { next?: string }).next), false)));

  // The form posts the token in the body: it never appears in a URL, a log line or the browser's history.
  app.post('/login', async (req, reply) => {
    const body = (req.body ?? {}) as { token?: unknown; next?: unknown };
    const next = safeNext(body.next);
    if (typeof body.token !== 'string' || !signedIn(req, body.token)) {
      req.log.warn('sign-in with a wrong token');
      return reply.code(401).type('text/html').send(loginPage(next, true));
    }
    req.log.info({ operator: req.operator }, 'operator signed in');
    return setCookie(reply, body.token).redirect(next, 303);
  });
});
