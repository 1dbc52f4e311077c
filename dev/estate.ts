// Generates orgs shaped like Chef's (docs/domain.md) and loads them into a CouchDB-protocol
// server: opscode_account (orgs and auth joins) and one chef_<guid> database
// per org. Used by the tests, the demo and the benchmarks.
import { randomBytes } from 'node:crypto';
import nano from 'nano';
import { TYPES } from '../src/stores/couch-docs.js';

export const CONTAINER_NAMES = [
  'clients',
  'containers',
  'cookbooks',
  'data',
  'environments',
  'groups',
  'nodes',
  'roles',
  'sandboxes',
  'policies',
  'policy_groups',
  'cookbook_artifacts',
];
export const GROUP_NAMES = ['admins', 'billing-admins', 'clients', 'users', 'ops'];

export const hex32 = () => randomBytes(16).toString('hex');

export interface OrgSpec {
  name: string;
  guid?: string;
  precreated?: boolean;
  containers?: number;
  groups?: number;
  /** How many of the org's objects get no AuthJoin. */
  missingAuthz?: number;
  /** The org's chef_<guid> database is not created. */
  noDatabase?: boolean;
  /** Extra documents for the org database (messy data, other types). */
  extraDocs?: Record<string, unknown>[];
  /** Other Chef objects (nodes, roles) the migration must ignore. */
  otherDocs?: number;
}

export interface SeededOrg {
  name: string;
  guid: string;
  precreated: boolean;
  /** Objects that should land in SQL: id, name, authz id, table. */
  expected: { id: string; name: string; authzId: string; table: 'containers' | 'groups' }[];
  skippedIds: string[];
}

export function buildOrg(spec: OrgSpec): { org: SeededOrg; accountDocs: Record<string, unknown>[]; orgDocs: Record<string, unknown>[] } {
  const guid = spec.guid ?? hex32();
  const accountDocs: Record<string, unknown>[] = [
    {
      _id: hex32(),
      json_class: TYPES.organization,
      name: spec.name,
      guid,
      full_name: spec.precreated ? 'Pre-created' : `${spec.name} Inc.`,
      org_type: 'Business',
    },
  ];
  const orgDocs: Record<string, unknown>[] = [];
  const org: SeededOrg = { name: spec.name, guid, precreated: !!spec.precreated, expected: [], skippedIds: [] };
  const requester = hex32();
  const objects = [
    ...Array.from({ length: spec.containers ?? 12 }, (_, i) => CONTAINER_NAMES[i] ?? `container-${i}`).map((n) => ({
      table: 'containers' as const,
      type: TYPES.container,
      field: 'containername',
      name: n,
    })),
    ...Array.from({ length: spec.groups ?? 5 }, (_, i) => GROUP_NAMES[i] ?? `group-${i}`).map((n) => ({
      table: 'groups' as const,
      type: TYPES.group,
      field: 'groupname',
      name: n,
    })),
  ];
  objects.forEach((o, i) => {
    const id = hex32();
    const doc: Record<string, unknown> = { _id: id, 'couchrest-type': o.type, [o.field]: o.name, requester_id: requester, orgname: spec.name };
    if (o.table === 'containers') doc.containerpath = o.name;
    else doc.actor_and_group_names = { users: [], clients: [], groups: [] };
    orgDocs.push(doc);
    if (i < (spec.missingAuthz ?? 0)) {
      org.skippedIds.push(id);
      return;
    }
    const authzId = hex32();
    accountDocs.push({ _id: hex32(), json_class: TYPES.authJoin, user_object_id: id, auth_object_id: authzId });
    org.expected.push({ id, name: o.name, authzId, table: o.table });
  });
  for (let i = 0; i < (spec.otherDocs ?? 0); i++) orgDocs.push({ _id: hex32(), 'couchrest-type': 'Chef::Node', name: `node-${i}` });
  orgDocs.push(...(spec.extraDocs ?? []));
  return { org, accountDocs, orgDocs };
}

/** Loads the orgs into the server; returns what each org should become in SQL. */
export async function seedEstate(couchUrl: string, specs: OrgSpec[], opts: { accountDb?: string; parallel?: number } = {}): Promise<SeededOrg[]> {
  const server = nano(couchUrl);
  const accountDbName = opts.accountDb ?? 'opscode_account';
  await server.db.create(accountDbName).catch((e) => {
    if (e.statusCode !== 412) throw e;
  });
  const accountDb = server.use(accountDbName);
  const built = specs.map(buildOrg);
  const accountDocs = built.flatMap((b) => b.accountDocs);
  for (let i = 0; i < accountDocs.length; i += 5000) await accountDb.bulk({ docs: accountDocs.slice(i, i + 5000) });
  const queue = built.filter((b, i) => !specs[i].noDatabase);
  const parallel = opts.parallel ?? 8;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let b = queue.shift(); b; b = queue.shift()) {
        const dbName = `chef_${b.org.guid}`;
        await server.db.create(dbName);
        // In pieces: a huge org's database is written 5,000 documents a request.
        for (let i = 0; i < b.orgDocs.length; i += 5000) await server.use(dbName).bulk({ docs: b.orgDocs.slice(i, i + 5000) });
      }
    }),
  );
  return built.map((b) => b.org);
}

/**
 * What a Chef estate's darklaunch Redis may hold before phase 2, spelled out:
 * every org without flags of its own served from CouchDB. (With no fields at
 * all Chef serves them from CouchDB too: only exactly "false" means SQL.)
 */
export async function seedDarklaunchDefaults(redis: { hset(key: string, fields: Record<string, string>): Promise<unknown> }): Promise<void> {
  await redis.hset('dl_default', { couchdb_containers: 'true', couchdb_groups: 'true' });
}

/** Adds documents to an existing account or org database. */
export async function addDocs(couchUrl: string, dbName: string, docs: Record<string, unknown>[]): Promise<void> {
  await nano(couchUrl).use(dbName).bulk({ docs });
}

/** nano's refusal of a database that is not there. */
const isNotFound = (e: unknown) => (e as { statusCode?: number } | null)?.statusCode === 404;

/**
 * Deletes an estate: the chef_<guid> database of every org in `accountDb`
 * and of the given guids (those seeded: an org whose document did not get
 * into `accountDb` may have a database all the same), then `accountDb`
 * itself. Missing ones are fine.
 */
export async function dropEstate(url: string, accountDb: string, guids: string[] = []): Promise<number> {
  const server = nano(url);
  const orgGuids = new Set(guids);
  const db = server.use<Record<string, unknown>>(accountDb);
  const list = await db.list({ include_docs: true }).catch((e: unknown) => {
    if (isNotFound(e)) return { rows: [] };
    throw e;
  });
  for (const r of list.rows as { doc?: Record<string, unknown> }[])
    if (r.doc?.json_class === TYPES.organization && typeof r.doc.guid === 'string') orgGuids.add(r.doc.guid);
  let dropped = 0;
  const gone = (e: unknown) => {
    if (!isNotFound(e)) throw e;
  };
  const queue = [...orgGuids].map((g) => `chef_${g}`);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let name = queue.shift(); name; name = queue.shift()) await server.db.destroy(name).then(() => dropped++, gone);
    }),
  );
  await server.db.destroy(accountDb).then(() => dropped++, gone);
  return dropped;
}
