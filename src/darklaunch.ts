// The darklaunch flags the Chef API servers read on every request. Values are
// the strings "true"/"false". Under DRY_RUN nothing is written: each write that
// would have happened is logged instead.
import { countRoundTrip } from './stores/round-trips.js';
import type { Redis } from 'ioredis';
import { InfrastructureError, OwnershipLostError } from './errors.js';
import { retryThroughOutage, type OutagePolicy } from './stores/outage.js';
import { beforeWrite } from './stores/pause-point.js';
import {
  chefRouting,
  DEFAULT_KEY,
  fieldsServing,
  keyTypeEffect,
  orgFlagsKey,
  OVERRIDE_KEY,
  takesDown,
  type ChefRouting,
  type DarklaunchHashes,
  type KeyTypeProblem,
  type ServedFrom,
} from './chef-routing.js';

export { DEFAULT_KEY, OVERRIDE_KEY, orgFlagsKey, ROUTING_FIELDS, type RoutingField } from './chef-routing.js';
export const ORG_CREATION_KEY = 'dl_org__OC_INTERNAL_NO_ORG';

/**
 * One routing field as an operator should see it: true or false for the
 * exact strings mover writes, null when the hash has no such field, and any
 * other value as it is stored (Chef reads "0" or "FALSE" as CouchDB).
 */
export type RawFlag = boolean | string | null;
const raw = (v: string | undefined): RawFlag => (v === undefined ? null : v === 'true' ? true : v === 'false' ? false : v);

export interface OrgFlags {
  couchdb_containers: RawFlag;
  couchdb_groups: RawFlag;
  '503_mode': RawFlag;
}

/** A darklaunch key is not a hash (a string, a list): Chef's front end answers 500 instead of routing (src/chef-routing.ts). */
export class DarklaunchKeyTypeError extends Error {
  constructor(readonly problem: KeyTypeProblem) {
    super(keyTypeEffect(problem));
    this.name = 'DarklaunchKeyTypeError';
  }
}

/** What Chef sees for one org: the three hashes as stored, and what it does with them. */
export interface OrgRouting {
  hashes: DarklaunchHashes;
  routing: ChefRouting;
}

/**
 * Every call is retried through an outage of the darklaunch Redis (a failover, a
 * restart), for up to the grace (src/stores/outage.ts): while it is away the
 * Chef API serves every org 503 anyway, so waiting for it costs nothing, and
 * an org dark now is brought up as soon as it is back. Every write here is
 * idempotent, so sending one again is safe.
 */
export class Darklaunch {
  private readonly log;
  /** The fence scripts, sent by EVALSHA (ioredis loads them on a NOSCRIPT). */
  private readonly commands: FenceCommands;
  constructor(
    private readonly redis: Redis,
    private readonly outage: OutagePolicy,
    readonly dryRun: boolean,
  ) {
    this.log = outage.log;
    redis.defineCommand('moverRaiseFence', { numberOfKeys: 1, lua: RAISE_FENCE });
    redis.defineCommand('moverFencedHset', { numberOfKeys: 2, lua: FENCED_HSET });
    this.commands = redis as unknown as FenceCommands;
  }

  private retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryThroughOutage(this.outage, 'darklaunch_redis', what, () => {
      countRoundTrip('darklaunch_redis');
      return fn();
    });
  }

  /**
   * Commands in one pipelined round trip, retried through an outage; each reply as
   * [error, value]. An error reply fails it all, except WRONGTYPE where
   * `wrongTypeOk` (a key that is not a hash: the caller names it). Store
   * failures past the grace are InfrastructureErrors.
   */
  private async pipelined(what: string, commands: (string | Record<string, string>)[][], wrongTypeOk = false): Promise<[Error | null, unknown][]> {
    try {
      return await this.retrying(what, async () => {
        const replies = await this.redis.pipeline(commands).exec();
        const failed = (replies ?? []).find(([e]) => e && !(wrongTypeOk && isWrongType(e)));
        if (!replies || failed) throw failed?.[0] ?? new Error('no reply');
        return replies;
      });
    } catch (err) {
      throw new InfrastructureError(`darklaunch ${what}: ${(err as Error).message}`, 'darklaunch', { cause: err });
    }
  }

  private async write(key: string, fields: Record<string, string>, context: Record<string, unknown> = {}): Promise<void> {
    if (this.dryRun) {
      this.log.info({ ...context, key, fields, dry_run: true }, 'darklaunch write skipped (dry run)');
      return;
    }
    try {
      await this.retrying(`write ${key}`, () => this.redis.hset(key, fields));
    } catch (err) {
      throw new InfrastructureError(`darklaunch write ${key}: ${(err as Error).message}`, 'darklaunch', { cause: err });
    }
  }

  /**
   * An org's flag writes, fenced by its lease's epoch (docs/architecture.md,
   * "Fencing"): the fence is raised now, as the lease is taken, and each write
   * waits for it and is refused by the darklaunch Redis itself (one script,
   * atomic with the HSET) once a later holder has raised it. The only way
   * mover writes an org's own flags.
   */
  fenced(org: string, epoch: number): FencedOrgFlags {
    return new FencedOrgFlags(this, org, epoch);
  }

  /** Raises the org's fence to `epoch`; refused (OwnershipLostError) if a later holder's is there. */
  async raiseFence(org: string, epoch: number): Promise<void> {
    if (this.dryRun) return;
    const raised = await this.script(`raise the fence of ${org}`, () => this.commands.moverRaiseFence(fenceKey(org), String(epoch), String(FENCE_TTL_S)));
    if (raised !== 1) throw new OwnershipLostError(`a later holder raised the darklaunch fence of ${org} past epoch ${epoch}`);
  }

  /** HSET of the org's own hash, only if its fence is still `epoch` (else OwnershipLostError, nothing written). */
  async writeFenced(org: string, epoch: number, fields: Record<string, string>): Promise<void> {
    if (this.dryRun) {
      this.log.info({ org_name: org, key: orgFlagsKey(org), fields, dry_run: true }, 'darklaunch write skipped (dry run)');
      return;
    }
    const args = [String(epoch), ...Object.entries(fields).flat()];
    await beforeWrite('flags', { orgName: org });
    const done = await this.script(`write ${orgFlagsKey(org)}`, () => this.commands.moverFencedHset(fenceKey(org), orgFlagsKey(org), ...args));
    if (done === 1) return;
    throw new OwnershipLostError(
      done === 0
        ? `a later holder raised the darklaunch fence of ${org} past epoch ${epoch}`
        : `the darklaunch fence of ${org} is gone (expired, or lost by the Redis)`,
    );
  }

  /** A fence script, retried through an outage (each is safe to send again: it checks before it writes). */
  private async script(what: string, send: () => Promise<unknown>): Promise<number> {
    try {
      return Number(await this.retrying(what, send));
    } catch (err) {
      throw new InfrastructureError(`darklaunch ${what}: ${(err as Error).message}`, 'darklaunch', { cause: err });
    }
  }

  /**
   * The prep pass: many orgs pinned to CouchDB in one pipelined round trip,
   * each routing field set only where the org's hash has none (HSETNX). A pin
   * is made for orgs no delivery has touched yet, read a moment before; it
   * carries no lease, so Redis itself keeps a late one (a paused prep pass)
   * from moving an org mover has since routed to SQL, or any field someone
   * set on purpose. Returns the orgs whose hash already had a routing field,
   * left as it was.
   */
  async pinOrgsToCouch(orgs: string[]): Promise<string[]> {
    if (!orgs.length) return [];
    if (this.dryRun) {
      this.log.info({ orgs: orgs.length, first: orgs[0], dry_run: true }, 'darklaunch pins skipped (dry run)');
      return [];
    }
    const replies = await this.pipelined(
      'pin orgs',
      orgs.flatMap((org) => [
        ['hsetnx', orgFlagsKey(org), 'couchdb_containers', 'true'],
        ['hsetnx', orgFlagsKey(org), 'couchdb_groups', 'true'],
      ]),
    );
    return orgs.filter((_, i) => Number(replies[2 * i][1]) === 0 || Number(replies[2 * i + 1][1]) === 0);
  }

  setDefault(flags: { couchdb_containers: boolean; couchdb_groups: boolean }) {
    return this.write(DEFAULT_KEY, { couchdb_containers: String(flags.couchdb_containers), couchdb_groups: String(flags.couchdb_groups) });
  }

  async setOrgCreation(enabled: boolean): Promise<void> {
    if (!enabled) return this.write(ORG_CREATION_KEY, { disable_new_orgs: 'true' });
    // Legacy enable_org_creation deletes the field rather than writing "false".
    if (this.dryRun) {
      this.log.info({ key: ORG_CREATION_KEY, field: 'disable_new_orgs', dry_run: true }, 'darklaunch delete skipped (dry run)');
      return;
    }
    await this.retrying('enable org creation', () => this.redis.hdel(ORG_CREATION_KEY, 'disable_new_orgs'));
  }

  async orgCreationEnabled(): Promise<boolean> {
    return (await this.retrying('read org creation', () => this.redis.hget(ORG_CREATION_KEY, 'disable_new_orgs'))) !== 'true';
  }

  async getDefault(): Promise<{ couchdb_containers: RawFlag; couchdb_groups: RawFlag }> {
    const h = await this.getHash(DEFAULT_KEY);
    return { couchdb_containers: raw(h.couchdb_containers), couchdb_groups: raw(h.couchdb_groups) };
  }

  /**
   * The three hashes Chef reads for one org (one pipelined round trip) and
   * what Chef does with them. A key that is not a hash throws
   * DarklaunchKeyTypeError naming it: Chef fails on it too.
   */
  async orgRouting(org: string): Promise<OrgRouting> {
    const [dl_default, dl_org, dl_override] = await this.readHashes(`read routing of ${org}`, [DEFAULT_KEY, orgFlagsKey(org), OVERRIDE_KEY]);
    const hashes = { dl_default, dl_org, dl_override };
    return { hashes, routing: chefRouting(org, hashes) };
  }

  /**
   * Why Chef does not serve this org's containers and groups all from `store`,
   * or null if it does: the fields that send them elsewhere, or its
   * dl_org_<org> not being a hash (Chef answers 500 for the org). A
   * dl_default or dl_override that is not a hash throws: it breaks every org.
   */
  async whyNotServedFrom(org: string, store: ServedFrom): Promise<string | null> {
    try {
      const elsewhere = fieldsServing((await this.orgRouting(org)).routing, store === 'sql' ? 'couchdb' : 'sql');
      return elsewhere.length ? `Chef serves it from ${store === 'sql' ? 'CouchDB' : 'SQL'}: ${elsewhere.join(', ')} (only exactly "false" means SQL)` : null;
    } catch (err) {
      if (err instanceof DarklaunchKeyTypeError && err.problem.key === orgFlagsKey(org))
        return `${err.message} (inspect it with redis-cli TYPE ${err.problem.key})`;
      throw err;
    }
  }

  /** HGETALL of each key in one pipeline; a key of another type is named with its type. */
  private async readHashes(what: string, keys: string[]): Promise<Record<string, string>[]> {
    const replies = await this.pipelined(
      what,
      keys.map((k) => ['hgetall', k]),
      true,
    );
    const wrong = replies.findIndex(([e]) => e);
    if (wrong >= 0) throw new DarklaunchKeyTypeError({ key: keys[wrong], type: await this.typeOf(keys[wrong]) });
    return replies.map(([, h]) => h as Record<string, string>);
  }

  private async typeOf(key: string): Promise<string> {
    const [[, type]] = await this.pipelined(`type of ${key}`, [['type', key]]);
    return String(type);
  }

  /** One hash as stored ({} when the key does not exist); DarklaunchKeyTypeError if it is not a hash. */
  async getHash(key: string): Promise<Record<string, string>> {
    return (await this.readHashes(`read ${key}`, [key]))[0];
  }

  /**
   * Many orgs' own hashes in one pipelined round trip (run it in batches):
   * each as stored, or the key's type where it is not a hash.
   */
  async orgHashes(orgs: string[]): Promise<({ hash: Record<string, string> } | { type: string })[]> {
    if (!orgs.length) return [];
    const replies = await this.pipelined(
      'read org flags',
      orgs.map((o) => ['hgetall', orgFlagsKey(o)]),
      true,
    );
    return Promise.all(replies.map(async ([e, h], i) => (e ? { type: await this.typeOf(orgFlagsKey(orgs[i])) } : { hash: h as Record<string, string> })));
  }

  /** The keys of these that exist and are not hashes, with their types (one pipelined round trip). */
  async keysNotHashes(keys: string[]): Promise<KeyTypeProblem[]> {
    const types = (
      await this.pipelined(
        'read key types',
        keys.map((k) => ['type', k]),
      )
    ).map(([, t]) => String(t));
    return keys.map((key, i) => ({ key, type: types[i] })).filter((p) => p.type !== 'hash' && p.type !== 'none');
  }

  /** Whether the org's own 503_mode is up now. */
  async orgDown(org: string): Promise<boolean> {
    const [[, value]] = await this.pipelined(`read 503_mode of ${org}`, [['hget', orgFlagsKey(org), '503_mode']], true);
    return takesDown(value as string | null);
  }

  /** Which of these orgs have their own 503_mode up right now (one pipelined round trip). */
  async orgsDown(orgs: string[]): Promise<string[]> {
    if (!orgs.length) return [];
    // Not retried: run status asks this and must answer at once (null when the darklaunch Redis is away).
    const results = await this.redis.pipeline(orgs.map((o) => ['hget', orgFlagsKey(o), '503_mode'])).exec();
    // A key that is not a hash makes Chef answer 500 for that org, not 503: it is not counted dark.
    const failed = (results ?? []).find(([e]) => e && !isWrongType(e));
    if (!results || failed) throw new InfrastructureError(`darklaunch read: ${failed?.[0]?.message ?? 'no reply'}`, 'darklaunch');
    return orgs.filter((_, i) => takesDown(results[i][1] as string | null));
  }

  getOverride(): Promise<Record<string, string>> {
    return this.getHash(OVERRIDE_KEY);
  }

  /**
   * An org's own flags as stored, and beside them what Chef will do with its
   * requests (`effective`). A key Chef cannot read (not a hash) gives the
   * reason instead of the routing: Chef answers 500 there.
   */
  async orgView(org: string): Promise<OrgFlags & { effective: ChefRouting | { error: string; key: string; type: string } }> {
    try {
      const { hashes, routing } = await this.orgRouting(org);
      return { ...ownFlags(hashes.dl_org), effective: routing };
    } catch (err) {
      if (!(err instanceof DarklaunchKeyTypeError)) throw err;
      // dl_default or dl_override is the broken one: the org's own flags can still be shown.
      const [own] = err.problem.key === orgFlagsKey(org) ? [{ type: err.problem.type }] : await this.orgHashes([org]);
      return { ...ownFlags('hash' in own ? own.hash : {}), effective: { error: err.message, ...err.problem } };
    }
  }
}

const ownFlags = (h: Record<string, string>): OrgFlags => ({
  couchdb_containers: raw(h.couchdb_containers),
  couchdb_groups: raw(h.couchdb_groups),
  '503_mode': raw(h['503_mode']),
});

/** Redis's answer to a command on a key of another type. */
export const isWrongType = (err: Error) => err.message.startsWith('WRONGTYPE');

/** How long an org's fence outlives its last raise: far past any delivery of one org (each store call gives up within the outage grace). */
export const FENCE_TTL_S = 3600;

/**
 * The key holding an org's fence: the highest lease epoch raised for it. In
 * the hash slot of dl_org_<org> (its tag is what Redis hashes of that key), so
 * one script may touch both, on a Redis Cluster as on one server. Not a
 * field of dl_org_<org>: Chef copies every field of the org's hashes into the
 * X-Ops-DarkLaunch header it sends to erchef. (A name with a brace but no
 * tag Redis would hash, "x-{}-y", cannot share its slot under any key; Chef
 * allows no braces in org names.)
 */
export function fenceKey(org: string): string {
  const key = orgFlagsKey(org);
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const tag = close > open + 1 ? key.slice(open + 1, close) : key;
  return tag === key ? `mover_fence:{${key}}` : `mover_fence:{${tag}}${key}`;
}

/** Raise: KEYS[1] the fence, ARGV[1] the epoch, ARGV[2] its time to live. Refused (0) below a higher epoch already raised. */
const RAISE_FENCE = `local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1`;

/** Write: KEYS[1] the fence, KEYS[2] the org's hash, ARGV[1] the epoch, then fields and values. 1 written; 0 a later epoch holds the fence; -1 no fence. */
const FENCED_HSET = `local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then
  if cur then return 0 end
  return -1
end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1`;

interface FenceCommands {
  moverRaiseFence(fence: string, epoch: string, ttl: string): Promise<unknown>;
  moverFencedHset(fence: string, key: string, ...args: string[]): Promise<unknown>;
}

/**
 * One org's own flags, written only under its lease's epoch
 * (Darklaunch.fenced): the fence is raised when this is made, in the
 * background, and every write waits for it first.
 */
export class FencedOrgFlags {
  /** The raise, settled: null once raised, or why it could not be. */
  private readonly raised: Promise<Error | null>;
  constructor(
    private readonly dl: Darklaunch,
    readonly org: string,
    readonly epoch: number,
  ) {
    this.raised = dl.raiseFence(org, epoch).then(
      () => null,
      (err: unknown) => (err instanceof Error ? err : new Error(`fence raise failed: ${String(err)}`)),
    );
  }

  private async write(fields: Record<string, string>): Promise<void> {
    const failed = await this.raised;
    if (failed) throw failed;
    await this.dl.writeFenced(this.org, this.epoch, fields);
  }

  /** 503 for every request of the org (down), or not. */
  setDown(down: boolean) {
    return this.write({ '503_mode': String(down) });
  }

  /** The migration's switch in one write: served from SQL and up again. */
  routeToSqlAndUp() {
    return this.write({ couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
  }

  /** The way back in one write: served from CouchDB and up again. */
  routeBackToCouch() {
    return this.write({ couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
  }
}
