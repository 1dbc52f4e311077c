// Prometheus text format: org states per migration type, queue depths, run flags.
import type { FastifyInstance } from 'fastify';
import { countByState } from '../../db/org-states.js';
import { activeRuns } from '../../db/runs.js';

export default async function metrics(app: FastifyInstance) {
  app.get('/metrics', async (_req, reply) => {
    const { db, queues } = app.ctx;
    const lines: string[] = ['# HELP mover_orgs Orgs in the state tracker by migration type and state.', '# TYPE mover_orgs gauge'];
    for (const r of await countByState(db)) lines.push(`mover_orgs{migration_type="${r.migration_type}",state="${r.state}"} ${r.count}`);
    lines.push('# HELP mover_queue_jobs Jobs in each queue by BullMQ state.', '# TYPE mover_queue_jobs gauge');
    for (const [name, q] of Object.entries(queues)) {
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
      for (const [state, n] of Object.entries(counts)) lines.push(`mover_queue_jobs{queue="${name}",state="${state}"} ${n}`);
    }
    lines.push('# HELP mover_run_active Active runs (1) by migration type, with fatal_stop.', '# TYPE mover_run_active gauge');
    for (const r of await activeRuns(db)) lines.push(`mover_run_active{migration_type="${r.migration_type}",state="${r.state}",fatal_stop="${r.fatal_stop}"} 1`);
    return reply.type('text/plain; version=0.0.4').send(lines.join('\n') + '\n');
  });
}
