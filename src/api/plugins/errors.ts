// The one error handler: bad input is a 4xx naming the field, never a 500.
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance } from 'fastify';
import { isUnstorableText } from '../../stores/postgres.js';
import { validationMessage } from '../validation-message.js';
import { OperatorError } from '../../errors.js';

export default fp(async function errors(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      // Each field once, naming the values an enum or constant allows and any property that is not allowed.
      return reply.code(400).send({ error: 'bad_request', message: validationMessage(err.validationContext, err.validation) });
    }
    // The schemas refuse such strings by field first; this catches one a schema let through.
    if (isUnstorableText(err)) {
      req.log.warn({ err: err.message }, 'request held text PostgreSQL cannot store');
      return reply.code(400).send({ error: 'bad_request', message: `a string in the request holds a character PostgreSQL cannot store (${err.message})` });
    }
    // What an operator asked for cannot be done: the error names its status; its detail (the routing preflight's problems, each with its fix) goes beside the message.
    if (err instanceof OperatorError) return reply.code(err.status).send({ error: err.code, message: err.message, ...(err as { detail?: object }).detail });
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: (err.code ?? 'bad_request').toLowerCase(), message: err.message });
    }
    req.log.error({ err: err.message, stack: err.stack }, 'request failed');
    return reply.code(status >= 500 ? status : 500).send({ error: 'internal', message: 'internal error; see the api log' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));
});
