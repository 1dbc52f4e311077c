// One BullMQ queue per job kind; the kind's name is the queue's name.
import { Queue, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export const MIGRATION_TYPES = ['phase_2_migration', 'phase_2_migration_prep', 'phase_2_revert'] as const;
export type MigrationType = (typeof MIGRATION_TYPES)[number];
export const ACCOUNT_REFRESH = 'account_refresh';
export const QUEUE_NAMES = [...MIGRATION_TYPES, ACCOUNT_REFRESH] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export const isMigrationType = (t: string): t is MigrationType => (MIGRATION_TYPES as readonly string[]).includes(t);

export interface OrgJobData {
  runId: string;
  orgName: string;
  orgId: string;
}

/** Deterministic, so a re-sent start cannot queue an org twice and the reconciler can find an org's job. */
export const orgJobId = (runId: string, orgId: string) => `r${runId}.${orgId}`;

export function createQueues(connection: Redis, prefix: string, log: Logger): Record<QueueName, Queue> {
  const out = {} as Record<QueueName, Queue>;
  for (const name of QUEUE_NAMES) {
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
