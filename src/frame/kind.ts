// The one shape every job kind implements (docs/architecture.md, "Job kinds").
// A kind's name is its identity: its queue's name, its migration type in
// org_migration_state and migration_runs, and its file in src/jobs. The run
// manager (src/runs/manager.ts) starts, sizes, paces, halts and reports any
// kind from this description alone; the fleet gives each kind a worker; the
// reconciler calls each kind's reconcile.
import type { Job, Queue } from 'bullmq';
import type { Context } from '../context.js';

/** What dl_default must say when a run starts (the routing preflight, src/runs/routing-preflight.ts): orgs without their own flags on CouchDB (before step 2.6), on SQL (after it), or either. */
export type ExpectedDefault = 'couchdb' | 'sql' | 'any';
import type { RunRow } from '../db/runs.js';
import type { DbClient } from '../stores/postgres.js';

/** One org a run takes: its name and guid (Chef's org_id). */
export interface OrgTarget {
  name: string;
  guid: string;
}

/** A page of a run's targets (runs are queued page by page, src/runs/manager.ts). */
export interface TargetPage {
  after: string | null;
  size: number;
}

/** What an operator (or a phase step) asks a run to do. */
export interface RunRequest {
  /** How many of the kind's targets, in its order; 'all' for every one. */
  count: number | 'all';
  /** Only these orgs, by name (where the kind takes names); count still caps them. */
  orgs?: string[];
  /** Orgs in flight at once, fleet-wide. */
  concurrency: number;
  /** What dl_default must say before the run starts (the phase that starts it knows); default 'any'. */
  expectRouting?: ExpectedDefault;
  /** Kind-specific options, kept with the run (revert's writeBack). */
  params?: Record<string, unknown>;
}

/** The data of a job that carries one org. */
export interface OrgJobData {
  runId: string;
  orgName: string;
  orgId: string;
}

/** The data of a job that carries a batch of orgs (kinds with batchSize > 1). */
export interface BatchJobData {
  runId: string;
  batch: number;
  orgs: OrgTarget[];
}

/** How a kind is started as a run over orgs. */
export interface RunSpec {
  /** Whether the sleep time (the queue's rate limit) paces its org starts; the prep pass and revert run unpaced. */
  paced: boolean;
  /** Orgs per job: 1 (one job per org, named after it) or a batch. */
  batchSize: number;
  /** Whether the routing Chef applies is checked before a run starts (src/runs/routing-preflight.ts). */
  checksRouting: boolean;
  /**
   * One page of the orgs a run takes now, in the kind's order: at most
   * `page.size`, after the key `page.after` (null: from the first). `last` is
   * the key of the page's last org, the next page's `after`. Only the names
   * in `req.orgs` where the kind takes names; the run manager counts.
   */
  selectTargets(ctx: Context, req: RunRequest, page: TargetPage): Promise<{ targets: OrgTarget[]; last: string | null }>;
  /** Its orgs are rows of its own in org_migration_state (a per-org migration): the capture, ready, hold, reset and list routes take it. */
  ownsOrgs?: boolean;
  /** Started only by this phase's step, never by POST /migrations/:type/start (the purge deletes documents; phase 4 takes a confirmation). */
  onlyFromPhase?: number;
  /** Kind-specific fields for the run's status (revert: what it refused; purge: its totals), and for the phase step that ran it. */
  report?(ctx: Context, run: RunRow): Promise<Record<string, unknown>>;
  /** Records that the run took these orgs, once it exists and before their jobs are queued (a per-org migration marks them, to find lost jobs). */
  markInRun?(q: DbClient, runId: string, targets: OrgTarget[]): Promise<void>;
}

export interface JobKind {
  readonly type: string;
  /** Worker slots per process; default the process's WORKER_CONCURRENCY. */
  readonly slotsPerProcess?: number;
  /** Present for kinds started as runs over orgs; absent for a task like the account refresh. */
  readonly run?: RunSpec;
  /** One delivery of one job. Throwing fails the BullMQ job; the kind has recorded the org's fate first. */
  process(ctx: Context, job: Job, token: string | undefined): Promise<unknown>;
  /**
   * Finds this kind's work whose job was lost (a worker killed past BullMQ's
   * stall limit, a job removed by hand) and resolves it the safe way; returns
   * the org names it resolved. Called by every process's reconciler.
   */
  reconcile?(ctx: Context, jobState: (jobId: string) => Promise<JobState>): Promise<string[]>;
  /**
   * When the run's infrastructure breaker closes (src/frame/breaker.ts): puts
   * back into the run what failed because of the fault, not its data, and
   * queues it again; returns the org (or batch) names.
   */
  retryAfterBreaker?(ctx: Context, runId: string): Promise<string[]>;
}

/** A job's BullMQ state, or 'missing' when the queue no longer has it. */
export type JobState = string;
const LIVE = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);
/** A job in one of these states will still run (or is running): its org is not lost. */
export const isLive = (state: JobState) => LIVE.has(state);

export const JOB_OPTIONS = {
  attempts: 1, // an org's failure is handled by the job itself; BullMQ retrying would race the state tracker
  removeOnComplete: { age: 7 * 24 * 3600, count: 50_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
};

/** Deterministic, so a re-sent start cannot queue an org twice and the reconciler can find an org's job. */
export const orgJobId = (runId: string, orgId: string) => `r${runId}.${orgId}`;
export const batchJobId = (runId: string, batch: number) => `r${runId}.b${batch}`;

/**
 * Queues one job per org again in a run, under the same job ids: an old job
 * left under an id (failed, completed, or lost half-way) is removed first, or
 * BullMQ would keep it and add nothing.
 */
export async function addOrgJobs(queue: Queue, runId: string, orgs: { org_name: string; org_id: string }[]): Promise<void> {
  for (const o of orgs) await queue.remove(orgJobId(runId, o.org_id));
  await queue.addBulk(orgs.map((o) => orgJob(runId, o.org_name, o.org_id)));
}

/** One org's job: named after the org (what Bull Board lists), under its deterministic id. */
export const orgJob = (runId: string, orgName: string, orgId: string) => ({
  name: orgName,
  data: { runId, orgName, orgId } satisfies OrgJobData,
  opts: { ...JOB_OPTIONS, jobId: orgJobId(runId, orgId) },
});
