// Who acts on an org (docs/architecture.md, "Who acts on an org"): the one
// holding its lease, a row in mover.org_progress with a lease token and a
// time. Each process keeps its leases alive with one statement every third
// of a lease, for all of them at once, so a thousand orgs in flight cost no
// Postgres connection each (the advisory lock it replaces held one through
// the drain wait). A lease outlives a Postgres restart: it is in the table.
// A process that dies lets its leases lapse within ORG_LEASE_MS, before
// BullMQ hands its jobs to another worker (two job lock lengths).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import type { Context } from '../context.js';
import type { Db } from '../stores/postgres.js';
import type { Logger } from 'pino';
import { releaseLease, renewLeases, takeLease } from '../db/org-leases.js';
import type { OrgStateRow } from '../db/org-states.js';
import { errorMessage } from '../errors.js';
import { leaseAndClaim, type ClaimAsk, type LeaseAndClaim } from '../db/state-tracker.js';

export interface OrgLease {
  /**
   * True when this process cannot confirm that the lease is still its own:
   * another took it, or renewals have failed (Postgres away) for longer than
   * a lease lasts. Whoever holds it checks before acting on the org again
   * (retake), and stops if the org moved on meanwhile.
   */
  readonly lost: boolean;
  /** The lease's token: every SQL write for the org carries it, and Postgres refuses it once stale (docs/architecture.md, "Fencing"). */
  readonly token: string;
  /** The lease's fencing epoch, for the darklaunch Redis: higher for every later holder. */
  readonly epoch: number;
  /** Takes the lease again for the same token and reads the org back (with the epoch, new if another held it between); null if another holds it now. */
  retake(): Promise<{ org: OrgStateRow | null; epoch: number } | null>;
  /**
   * For a statement that ends the org's work and gives the lease up with it
   * (completeOrg), saving a round trip: stops renewing the lease (a renewal
   * racing that statement would take the lease for lost) and returns its token.
   */
  handingOver(): string;
  /** That statement gave the lease up: release() sends nothing. */
  handedOver(): void;
  release(): Promise<void>;
}

/**
 * How long a lease lasts without renewal: a third of the job lock. BullMQ
 * renews a job's lock every half lock, so a dead process's jobs come back at
 * least half a lock after its death; its leases have lapsed by then.
 */
export const orgLeaseMs = (jobLockMs: number) => Math.max(2000, Math.floor(jobLockMs / 3));

interface Held {
  type: string;
  orgId: string;
  /** Local time until which the last renewal confirms the lease. */
  goodUntil: number;
  takenByAnother: boolean;
}

class LeaseKeeper {
  private readonly held = new Map<string, Held>();
  private timer?: NodeJS.Timeout;
  private failing = false;
  /** A renewal still waiting (Postgres away, being retried): the next tick does not start another. */
  private renewing = false;

  constructor(
    private readonly db: Db,
    readonly ms: number,
    private readonly log: Logger,
  ) {}

  add(leaseToken: string, h: Held): void {
    this.held.set(leaseToken, h);
    if (!this.timer) {
      this.timer = setInterval(() => void this.renew(), Math.floor(this.ms / 3));
      this.timer.unref();
    }
  }

  remove(leaseToken: string): void {
    this.held.delete(leaseToken);
    if (!this.held.size && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get(leaseToken: string): Held | undefined {
    return this.held.get(leaseToken);
  }

  private async renew(): Promise<void> {
    const leaseTokens = [...this.held.keys()];
    if (!leaseTokens.length || this.renewing) return;
    this.renewing = true;
    const asked = Date.now();
    try {
      const mine = await renewLeases(this.db, leaseTokens, this.ms);
      for (const leaseToken of leaseTokens) {
        const h = this.held.get(leaseToken);
        if (!h) continue;
        if (mine.has(leaseToken)) h.goodUntil = Math.max(h.goodUntil, asked + this.ms);
        else if (!h.takenByAnother) {
          h.takenByAnother = true;
          this.log.warn(
            { migration_type: h.type, org_id: h.orgId },
            'org lease was taken by another (this process stalled past it); the delivery will stop before its next step',
          );
        }
      }
      if (this.failing) this.log.info({ leases: leaseTokens.length }, 'org leases renewed again');
      this.failing = false;
    } catch (err) {
      // Postgres away: the leases stay in the table; past their time this process no longer counts them as its own (lost).
      if (!this.failing) this.log.warn({ leases: leaseTokens.length, err: errorMessage(err) }, 'could not renew org leases; trying again');
      this.failing = true;
    } finally {
      this.renewing = false;
    }
  }
}

const keepers = new WeakMap<Db, LeaseKeeper>();
/** Who holds a lease, for an operator reading org_progress: this host and process. */
const OWNER_PREFIX = `${hostname()}:${process.pid}`;

function keeperOf(ctx: Context): LeaseKeeper {
  let k = keepers.get(ctx.db);
  if (!k) {
    k = new LeaseKeeper(ctx.db, orgLeaseMs(ctx.config.jobLockMs), ctx.log);
    keepers.set(ctx.db, k);
  }
  return k;
}

/** The org's lease and the org as it stands, or null if another holds the lease. */
export async function takeOrgLease(ctx: Context, type: string, orgId: string, orgName: string): Promise<{ lease: OrgLease; org: OrgStateRow | null } | null> {
  const keeper = keeperOf(ctx);
  const leaseToken = newLeaseToken();
  const asked = Date.now();
  const first = await takeLease(ctx.db, type, orgId, orgName, leaseToken, keeper.ms);
  if (!first.leased) return null;
  return { lease: heldLease(ctx, keeper, { type, orgId, orgName, leaseToken, epoch: first.epoch }, asked), org: first.org };
}

/**
 * The org's lease as takeOrgLease takes it, waiting up to a lease's length
 * (plus a second) for another holder: one that is alive gives it up when it
 * is done, and one that paused or died lets it lapse by then. Null if it is
 * still another's.
 */
export async function takeOrgLeaseWaiting(ctx: Context, type: string, orgId: string, orgName: string): ReturnType<typeof takeOrgLease> {
  const until = Date.now() + keeperOf(ctx).ms + 1000;
  for (;;) {
    const taken = await takeOrgLease(ctx, type, orgId, orgName);
    if (taken || Date.now() > until) return taken;
    await sleep(250);
  }
}

/**
 * A delivery's start: the org's lease and, holding it, the claim, in one
 * round trip (leaseAndClaim, src/db/state-tracker.ts); null if another holds
 * the lease.
 */
export async function takeOrgLeaseAndClaim(
  ctx: Context,
  org: { orgType: string; orgId: string; orgName: string; runId: string },
  ask: ClaimAsk,
): Promise<(NonNullable<ClaimedAgain> & { lease: OrgLease; claimAgain: () => Promise<ClaimedAgain> }) | null> {
  const { orgType: type, orgId, orgName, runId } = org;
  const keeper = keeperOf(ctx);
  const leaseToken = newLeaseToken();
  const asked = Date.now();
  const key = { type, orgId, runId };
  let r: Awaited<ReturnType<typeof leaseAndClaim>>;
  try {
    r = await leaseAndClaim(ctx.db, key, orgName, leaseToken, keeper.ms, ask);
  } catch (err) {
    // The call may have committed with its answer lost: give the lease up, so the reconciler need not wait for it to lapse
    // (not waited for: with Postgres away the error must not wait on it too).
    void releaseLease(ctx.db, type, orgId, leaseToken).catch((e) =>
      ctx.log.warn({ migration_type: type, org_id: orgId, err: errorMessage(e) }, 'could not release an org lease; it lapses by itself'),
    );
    throw err;
  }
  if (!r.leased) return null;
  const lease = heldLease(ctx, keeper, { type, orgId, orgName, leaseToken, epoch: r.epoch }, asked);
  /** The same call again by the lease's holder, its preflight now passed (the first verdict was read before the lease). */
  const claimAgain = async (): Promise<ClaimedAgain> => {
    const again = await leaseAndClaim(ctx.db, key, orgName, leaseToken, keeper.ms, { ...ask, refused: false });
    // A new epoch: the lease lapsed and another held it in between, and may have acted on the org.
    return again.leased && again.epoch === lease.epoch ? { org: again.org, claim: again.claim, guardCount: again.guardCount } : null;
  };
  return { lease, org: r.org, claim: r.claim, guardCount: r.guardCount, claimAgain };
}

/** What the same call found when made again: as the first, or null if the lease is another's now. */
type ClaimedAgain = Omit<Extract<LeaseAndClaim, { leased: true }>, 'leased' | 'epoch'> | null;

const newLeaseToken = () => `${OWNER_PREFIX}:${randomUUID()}`;

/** The lease `leaseToken` holds since `asked`, kept alive by the process's keeper. */
function heldLease(
  ctx: Context,
  keeper: LeaseKeeper,
  held: { type: string; orgId: string; orgName: string; leaseToken: string; epoch: number },
  asked: number,
): OrgLease {
  const { type, orgId, orgName, leaseToken } = held;
  keeper.add(leaseToken, { type, orgId, goodUntil: asked + keeper.ms, takenByAnother: false });
  let released = false;
  let epoch = held.epoch;
  return {
    token: leaseToken,
    get epoch() {
      return epoch;
    },
    handingOver() {
      keeper.remove(leaseToken);
      return leaseToken;
    },
    handedOver() {
      released = true;
    },
    get lost() {
      const h = keeper.get(leaseToken);
      return !h || h.takenByAnother || Date.now() > h.goodUntil;
    },
    async retake() {
      // Given up already (by a completion, or released): nothing to take back.
      if (released) return null;
      const at = Date.now();
      const again = await takeLease(ctx.db, type, orgId, orgName, leaseToken, keeper.ms);
      if (!again.leased) return null;
      keeper.add(leaseToken, { type, orgId, goodUntil: at + keeper.ms, takenByAnother: false });
      epoch = again.epoch;
      return { org: again.org, epoch };
    },
    async release() {
      if (released) return;
      released = true;
      keeper.remove(leaseToken);
      try {
        await releaseLease(ctx.db, type, orgId, leaseToken);
      } catch (err) {
        // It lapses by itself within a lease's time.
        ctx.log.warn({ migration_type: type, org_id: orgId, err: errorMessage(err) }, 'could not release an org lease; it lapses by itself');
      }
    },
  };
}
