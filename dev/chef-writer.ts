// Chef's API as far as the pause and fault tests need it: a client creating
// containers in live orgs. Each request is routed by Chef's own rule from the
// three darklaunch hashes (src/chef-routing.ts): 503 while the org is down,
// else written to CouchDB (its AuthJoin first, as opscode-account did) or to
// SQL, and acknowledged once written. A request that took longer than
// `timeoutMs` is not acknowledged: its client saw it time out. That bound
// stands for Chef's request timeout, which the drain wait must outlast (the
// runbook's sleep_time): the migration promises the writes Chef acknowledged
// within it. lost() says which acknowledged writes are not where Chef now
// serves their org from.
import nano from 'nano';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { chefRouting, DEFAULT_KEY, orgFlagsKey, OVERRIDE_KEY } from '../src/chef-routing.js';
import { orgDatabaseName, TYPES } from '../src/stores/couch-docs.js';
import { hex32 } from './estate.js';

export interface ChefWrite {
  org: string;
  guid: string;
  id: string;
  name: string;
  store: 'couchdb' | 'sql';
}

export interface ChefStores {
  /** The darklaunch Redis Chef reads. */
  redis: Redis;
  /** Chef's PostgreSQL (its containers table). */
  db: pg.Pool;
  couchUrl: string;
  accountDb: string;
}

export class ChefWriter {
  readonly acked: ChefWrite[] = [];
  /** Requests answered 503 (the org was dark): never acknowledged. */
  refused = 0;
  /** Requests that took longer than the timeout: not acknowledged, whatever they wrote. */
  timedOut = 0;
  /** Requests a store failed (Chef answers 5xx: never acknowledged), with what each said; kept for the report. */
  readonly failed: string[] = [];
  private readonly couch;

  constructor(
    private readonly stores: ChefStores,
    private readonly timeoutMs: number,
  ) {
    this.couch = nano(stores.couchUrl);
  }

  /** One "create container" request for the org: the write it acknowledged, or null (503, or timed out). */
  async create(org: { name: string; guid: string }): Promise<ChefWrite | null> {
    const started = Date.now();
    const replies = await this.stores.redis.pipeline().hgetall(DEFAULT_KEY).hgetall(orgFlagsKey(org.name)).hgetall(OVERRIDE_KEY).exec();
    const [dl_default, dl_org, dl_override] = (replies ?? []).map(([err, h]) => {
      if (err) throw err;
      return h as Record<string, string>;
    });
    const routing = chefRouting(org.name, { dl_default, dl_org, dl_override });
    if (routing.down) {
      this.refused++;
      return null;
    }
    const id = hex32();
    const name = `chef-${id.slice(0, 12)}`;
    if (routing.containers === 'couchdb') {
      await this.couch
        .use<Record<string, unknown>>(this.stores.accountDb)
        .insert({ _id: hex32(), json_class: TYPES.authJoin, user_object_id: id, auth_object_id: hex32() });
      await this.couch
        .use<Record<string, unknown>>(orgDatabaseName(org.guid))
        .insert({ _id: id, 'couchrest-type': TYPES.container, containername: name, containerpath: name, requester_id: hex32(), orgname: org.name });
    } else {
      await this.stores.db.query(
        `INSERT INTO containers (id, org_id, authz_id, name, last_updated_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc')`,
        [id, org.guid, hex32(), name, hex32()],
      );
    }
    if (Date.now() - started > this.timeoutMs) {
      this.timedOut++;
      return null;
    }
    const write: ChefWrite = { org: org.name, guid: org.guid, id, name, store: routing.containers };
    this.acked.push(write);
    return write;
  }

  /**
   * `parallel` clients, each creating a container in an org picked at random
   * every `everyMs` or so, until the stop() this returns is called (it waits
   * for their last requests).
   */
  writeOn(orgs: { name: string; guid: string }[], random: () => number, parallel = 2, everyMs = 40): () => Promise<void> {
    let writing = true;
    const clients = Array.from({ length: parallel }, async () => {
      while (writing) {
        try {
          await this.create(orgs[Math.floor(random() * orgs.length)]);
        } catch (err) {
          // A store failed the request (a paused peer's broken keep-alive socket, a cut proxy): Chef would answer
          // 5xx, so nothing is acknowledged. It is kept, and the client writes on, as Chef's clients retry.
          this.failed.push((err as Error).message);
        }
        await sleep(everyMs);
      }
    });
    return async () => {
      writing = false;
      await Promise.all(clients);
    };
  }

  /** The acknowledged writes that are not where Chef serves their org's containers from now. */
  async lost(): Promise<ChefWrite[]> {
    const byOrg = new Map<string, ChefWrite[]>();
    for (const w of this.acked) byOrg.set(w.org, [...(byOrg.get(w.org) ?? []), w]);
    const lost: ChefWrite[] = [];
    for (const writes of byOrg.values()) {
      const { name, guid } = { name: writes[0].org, guid: writes[0].guid };
      const [dl_default, dl_org, dl_override] = await Promise.all([DEFAULT_KEY, orgFlagsKey(name), OVERRIDE_KEY].map((k) => this.stores.redis.hgetall(k)));
      const there = new Set<string>();
      if (chefRouting(name, { dl_default, dl_org, dl_override }).containers === 'sql') {
        const { rows } = await this.stores.db.query(`SELECT id FROM containers WHERE org_id = $1::bpchar AND id = ANY($2)`, [guid, writes.map((w) => w.id)]);
        for (const r of rows) there.add(r.id);
      } else {
        const res = await twice(() => this.couch.use(orgDatabaseName(guid)).fetchRevs({ keys: writes.map((w) => w.id) }));
        for (const r of res.rows as { key: string; value?: { deleted?: boolean } }[]) if (r.value && !r.value.deleted) there.add(r.key);
      }
      lost.push(...writes.filter((w) => !there.has(w.id)));
    }
    return lost;
  }
}

/** A read tried once more if it fails: a keep-alive socket CouchDB closed while the run went on fails its first reuse (read ECONNRESET). */
async function twice<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (!/ECONNRESET|socket hang up|other side closed/.test((err as Error).message)) throw err;
    return read();
  }
}
