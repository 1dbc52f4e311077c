// The darklaunch flags the Chef API servers read on every request. Values are
// the strings "true"/"false". Under DRY_RUN nothing is written: each write that
// would have happened is logged instead.
import { countRoundTrip } from './stores/round-trips.js';
import type { Redis } from 'ioredis';
import { InfrastructureError } from './errors.js';
import { rideThrough, type OutagePolicy } from './stores/outage.js';

export const DEFAULT_KEY = 'dl_default';
export const OVERRIDE_KEY = 'dl_override';
export const ORG_CREATION_KEY = 'dl_org__OC_INTERNAL_NO_ORG';
export const orgKey = (org: string) => `dl_org_${org}`;

/** The fields that decide where an org's containers and groups are served from, and whether it answers. */
export const ROUTING_FIELDS = ['couchdb_containers', 'couchdb_groups', '503_mode'] as const;
export type RoutingField = (typeof ROUTING_FIELDS)[number];

/** How Chef's front end reads a flag: "true" and "1" mean true; anything else, or no value, false. */
export const chefTrue = (v: string | null | undefined) => v === 'true' || v === '1';

/** What Chef will do for one org: each field's value and the hash it came from (null: no hash has it). */
export interface EffectiveRouting {
  value: Record<RoutingField, boolean>;
  from: Record<RoutingField, string | null>;
}

export interface OrgFlags {
  couchdb_containers: boolean | null;
  couchdb_groups: boolean | null;
  '503_mode': boolean | null;
}

const parse = (v: string | null | undefined): boolean | null => (v === 'true' ? true : v === 'false' ? false : null);

/**
 * Every call rides through a darklaunch Redis that is away (a failover, a
 * restart), for up to the grace (src/stores/outage.ts): while it is away the
 * Chef API serves every org 503 anyway, so waiting for it costs nothing, and
 * an org dark now is brought up as soon as it is back. Every write here is
 * idempotent, so sending one again is safe.
 */
export class Darklaunch {
  private readonly log;
  constructor(private readonly redis: Redis, private readonly outage: OutagePolicy, readonly dryRun: boolean) {
    this.log = outage.log;
  }

  private ride<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return rideThrough(this.outage, 'darklaunch_redis', what, () => {
      countRoundTrip('darklaunch_redis');
      return fn();
    });
  }

  private async write(key: string, fields: Record<string, string>, context: Record<string, unknown> = {}): Promise<void> {
    if (this.dryRun) {
      this.log.info({ ...context, key, fields, dry_run: true }, 'darklaunch write skipped (dry run)');
      return;
    }
    try {
      await this.ride(`write ${key}`, () => this.redis.hset(key, fields));
    } catch (err) {
      throw new InfrastructureError(`darklaunch write ${key}: ${(err as Error).message}`, 'darklaunch', { cause: err });
    }
  }

  private org(org: string, fields: Record<string, string>) {
    return this.write(orgKey(org), fields, { org_name: org });
  }

  setOrgDown(org: string, down: boolean) {
    return this.org(org, { '503_mode': String(down) });
  }

  /** Route an org's containers and groups: true = CouchDB, false = SQL. */
  routeOrg(org: string, toCouch: boolean) {
    return this.org(org, { couchdb_containers: String(toCouch), couchdb_groups: String(toCouch) });
  }

  /** The migration's switch in one write: served from SQL and up again. */
  routeToSqlAndUp(org: string) {
    return this.org(org, { couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' });
  }

  /** The failure path in one write: served from CouchDB and up again. */
  routeBackToCouch(org: string) {
    return this.org(org, { couchdb_containers: 'true', couchdb_groups: 'true', '503_mode': 'false' });
  }

  /** The prep pass: many orgs pinned to CouchDB in one pipelined round trip. */
  async pinOrgsToCouch(orgs: string[]): Promise<void> {
    if (!orgs.length) return;
    if (this.dryRun) {
      this.log.info({ orgs: orgs.length, first: orgs[0], dry_run: true }, 'darklaunch pins skipped (dry run)');
      return;
    }
    try {
      await this.ride('pin orgs', async () => {
        const pipeline = this.redis.pipeline();
        for (const org of orgs) pipeline.hset(orgKey(org), { couchdb_containers: 'true', couchdb_groups: 'true' });
        const results = await pipeline.exec();
        const failed = (results ?? []).find(([e]) => e);
        if (!results || failed) throw failed?.[0] ?? new Error('no reply');
      });
    } catch (err) {
      throw new InfrastructureError(`darklaunch pin: ${(err as Error).message}`, 'darklaunch', { cause: err });
    }
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
    await this.ride('enable org creation', () => this.redis.hdel(ORG_CREATION_KEY, 'disable_new_orgs'));
  }

  async orgCreationEnabled(): Promise<boolean> {
    return (await this.ride('read org creation', () => this.redis.hget(ORG_CREATION_KEY, 'disable_new_orgs'))) !== 'true';
  }

  async getDefault(): Promise<{ couchdb_containers: boolean | null; couchdb_groups: boolean | null }> {
    const h = await this.ride('read dl_default', () => this.redis.hgetall(DEFAULT_KEY));
    return { couchdb_containers: parse(h.couchdb_containers), couchdb_groups: parse(h.couchdb_groups) };
  }

  /**
   * The routing Chef applies to an org: dl_default, then dl_org_<org>, then
   * dl_override, each overriding the one before field by field.
   */
  async effectiveRouting(org: string): Promise<EffectiveRouting> {
    const keys = [DEFAULT_KEY, orgKey(org), OVERRIDE_KEY];
    let hashes: Record<string, string>[];
    try {
      hashes = await this.ride(`read routing of ${org}`, async () => {
        const results = await this.redis.pipeline(keys.map((k) => ['hgetall', k])).exec();
        const failed = (results ?? []).find(([e]) => e);
        if (!results || failed) throw failed?.[0] ?? new Error('no reply');
        return results.map(([, h]) => h as Record<string, string>);
      });
    } catch (err) {
      throw new InfrastructureError(`darklaunch read for ${org}: ${(err as Error).message}`, 'darklaunch', { cause: err });
    }
    const out: EffectiveRouting = { value: {} as EffectiveRouting['value'], from: {} as EffectiveRouting['from'] };
    for (const field of ROUTING_FIELDS) {
      const i = [2, 1, 0].find((n) => field in hashes[n]);
      out.from[field] = i === undefined ? null : keys[i];
      out.value[field] = i === undefined ? false : chefTrue(hashes[i][field]);
    }
    return out;
  }

  /** Which of these orgs have their own 503_mode up right now (one pipelined round trip). */
  async orgsDown(orgs: string[]): Promise<string[]> {
    if (!orgs.length) return [];
    // Not ridden through: run status asks this and must answer at once (null when the darklaunch Redis is away).
    const results = await this.redis.pipeline(orgs.map((o) => ['hget', orgKey(o), '503_mode'])).exec();
    const failed = (results ?? []).find(([e]) => e);
    if (!results || failed) throw new InfrastructureError(`darklaunch read: ${failed?.[0]?.message ?? 'no reply'}`, 'darklaunch');
    return orgs.filter((_, i) => chefTrue(results[i][1] as string | null));
  }

  async getOverride(): Promise<Record<string, string>> {
    return this.ride('read dl_override', () => this.redis.hgetall(OVERRIDE_KEY));
  }

  async getOrg(org: string): Promise<OrgFlags> {
    const h = await this.ride(`read ${orgKey(org)}`, () => this.redis.hgetall(orgKey(org)));
    return { couchdb_containers: parse(h.couchdb_containers), couchdb_groups: parse(h.couchdb_groups), '503_mode': parse(h['503_mode']) };
  }
}
