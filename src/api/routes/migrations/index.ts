// Everything under /migrations/:type, where :type is a job kind that runs
// over orgs (src/jobs): its orgs (orgs.ts), its runs (runs.ts) and what they read back (run-reads.ts). One
// prefix, one folder, as fastify/demo lays out its routes.
import type { FastifyInstance } from 'fastify';
import orgs from './orgs.js';
import runs from './runs.js';
import runReads from './run-reads.js';

export default async function migrations(fastify: FastifyInstance) {
  await fastify.register(orgs);
  await fastify.register(runs);
  await fastify.register(runReads);
}
