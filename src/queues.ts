// One BullMQ queue per job kind; the kind's name is the queue's name
// (src/jobs/index.ts lists them).
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';

export function createQueues(connection: Redis | Cluster, prefix: string, log: Logger, names: readonly string[]): Record<string, Queue> {
  const out: Record<string, Queue> = {};
  for (const name of names) {
    const q = new Queue(name, { connection, prefix });
    q.on('error', (err) => log.error({ queue: name, err: err.message }, 'queue error'));
    out[name] = q;
  }
  return out;
}

/** How many windows the pacing's rate is kept in, each as short (at least one start each): the evener the starts, the smaller each burst of copies CouchDB serves at once. */
const PACING_SLICES = 50;

/**
 * Pacing as the queue's global rate limit: at most `concurrency` org starts
 * per window, the window being the sleep time (legacy sleep_time: what the
 * legacy manager's N workers each sleeping sleep_time per org gave) or the
 * drain wait, whichever is longer. An org holds its slot for at least the
 * drain wait, so starts faster than that only come in waves: every slot
 * filled at once, the orgs dark at once, their work on the same cores at
 * once, their slots freed at once. The same rate is kept in PACING_SLICES windows
 * as short (at least one start each), so starts come evenly instead. Neither set:
 * no limit.
 */
export async function applyPacing(queue: Queue, concurrency: number, sleepTimeMs: number, drainWaitMs = 0): Promise<void> {
  const windowMs = Math.max(sleepTimeMs, drainWaitMs);
  if (windowMs <= 0) {
    await queue.removeGlobalRateLimit();
    return;
  }
  const n = Math.max(1, concurrency);
  const perSlice = Math.ceil(n / PACING_SLICES);
  await queue.setGlobalRateLimit(perSlice, Math.max(1, Math.round((windowMs * perSlice) / n)));
}
