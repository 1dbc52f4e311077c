// One BullMQ queue per job kind; the kind's name is the queue's name
// (src/jobs/index.ts lists them).
import { Queue, type ConnectionOptions } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';

export function createQueues(connection: Redis | Cluster, prefix: string, log: Logger, names: readonly string[]): Record<string, Queue> {
  const out: Record<string, Queue> = {};
  for (const name of names) {
    const q = new Queue(name, { connection: connection as ConnectionOptions, prefix });
    q.on('error', (err) => log.error({ queue: name, err: err.message }, 'queue error'));
    out[name] = q;
  }
  return out;
}

/**
 * Pacing (legacy sleep_time) as the queue's global rate limit: at most
 * `concurrency` org starts per sleep-time window, which is what the legacy
 * manager's N workers each sleeping sleep_time per org gave. 0 removes it.
 */
export async function applyPacing(queue: Queue, concurrency: number, sleepTimeMs: number): Promise<void> {
  if (sleepTimeMs > 0) await queue.setGlobalRateLimit(Math.max(1, concurrency), sleepTimeMs);
  else await queue.removeGlobalRateLimit();
}
