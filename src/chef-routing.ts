// Where Chef serves an org, as Chef's own front end decides it (docs/domain.md,
// "How Chef reads the darklaunch flags"): the one rule every part of mover
// that reasons about routing goes by. Pure: it takes the three hashes as read
// and says what Chef will do with them.
//
// - The hashes merge dl_default < dl_org_<org> < dl_override, field by field.
// - A container or group request goes to SQL only when the merged
//   couchdb_<endpoint> is exactly "false"; anything else, no value at all
//   included, sends it to CouchDB.
// - 503_mode takes the org down only when it is exactly "true".
//
// mover itself writes only the exact strings "true" and "false".

export const DEFAULT_KEY = 'dl_default';
export const OVERRIDE_KEY = 'dl_override';
export const orgFlagsKey = (org: string) => `dl_org_${org}`;

/** The fields that decide where an org's containers and groups are served from, and whether it answers. */
export const ROUTING_FIELDS = ['couchdb_containers', 'couchdb_groups', '503_mode'] as const;
export type RoutingField = (typeof ROUTING_FIELDS)[number];

export type Hash = Record<string, string>;

/** The three hashes Chef reads for one org's request, as stored ({} for a key that does not exist). */
export interface DarklaunchHashes {
  dl_default: Hash;
  dl_org: Hash;
  dl_override: Hash;
}

export type ServedFrom = 'couchdb' | 'sql';

/** What Chef does with one org's requests. */
export interface ChefRouting {
  containers: ServedFrom;
  groups: ServedFrom;
  /** 503 for every request of the org. */
  down: boolean;
  /** Each routing field as merged: its value (null: no hash has it) and the key it came from. */
  fields: Record<RoutingField, { value: string | null; from: string | null }>;
}

/** A merged couchdb_* value: SQL only when exactly "false". */
export const routesToSql = (value: string | null | undefined): boolean => value === 'false';

/** A merged 503_mode value: down only when exactly "true". */
export const takesDown = (value: string | null | undefined): boolean => value === 'true';

/** What Chef does with `org`'s requests given these hashes. */
export function chefRouting(org: string, h: DarklaunchHashes): ChefRouting {
  const layers: [string, Hash][] = [
    [OVERRIDE_KEY, h.dl_override],
    [orgFlagsKey(org), h.dl_org],
    [DEFAULT_KEY, h.dl_default],
  ];
  const field = (f: RoutingField) => {
    const hit = layers.find(([, hash]) => Object.hasOwn(hash, f));
    return hit ? { value: hit[1][f], from: hit[0] } : { value: null, from: null };
  };
  const fields = { couchdb_containers: field('couchdb_containers'), couchdb_groups: field('couchdb_groups'), '503_mode': field('503_mode') };
  return {
    containers: routesToSql(fields.couchdb_containers.value) ? 'sql' : 'couchdb',
    groups: routesToSql(fields.couchdb_groups.value) ? 'sql' : 'couchdb',
    down: takesDown(fields['503_mode'].value),
    fields,
  };
}

/** The routing fields that send this org to `to`, named with their value and key, for messages ("couchdb_groups = "0" (dl_org_acme)"). */
export function fieldsServing(r: ChefRouting, to: ServedFrom): string[] {
  const parts: [keyof Pick<ChefRouting, 'containers' | 'groups'>, RoutingField][] = [
    ['containers', 'couchdb_containers'],
    ['groups', 'couchdb_groups'],
  ];
  return parts
    .filter(([what]) => r[what] === to)
    .map(([, f]) => {
      const { value, from } = r.fields[f];
      return value === null ? `${f} is set in no hash` : `${f} = "${value}" (${from})`;
    });
}

/** A darklaunch key that is not a hash: Chef's front end fails on it (HTTP 500) instead of routing. */
export interface KeyTypeProblem {
  key: string;
  type: string;
}

/** What a wrong-typed key does to Chef: every request for dl_default and dl_override, that org's for dl_org_<org>. */
export function keyTypeEffect(p: KeyTypeProblem): string {
  const whom = p.key === DEFAULT_KEY || p.key === OVERRIDE_KEY ? 'every request' : `every request of org ${p.key.slice('dl_org_'.length)}`;
  return `${p.key} is a ${p.type}, not a hash: Chef answers 500 for ${whom}`;
}
