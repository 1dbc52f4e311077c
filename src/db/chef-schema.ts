// Chef Server's own objects in its database: the org_state type and the
// containers, groups and org_migration_state tables. mover creates each one
// only where it is absent (an empty database), from migrations/chef/; where it
// exists (a Chef Server database) mover adopts it as it is, after checking it
// can hold what mover writes. mover never alters them (docs/configuration.md,
// "The Chef Server database (PostgreSQL)").
import type { DbClient } from '../stores/postgres.js';
import { ORG_STATES } from './state-tracker.js';

/** One Chef object, in the order they must be created. */
export interface ChefObject {
  category: 'type' | 'table';
  name: string;
  /** The file under migrations/chef/ that creates it. */
  file: string;
}

export const CHEF_OBJECTS: ChefObject[] = [
  { category: 'type', name: 'org_state', file: 'org_state.sql' },
  { category: 'table', name: 'containers', file: 'containers.sql' },
  { category: 'table', name: 'groups', file: 'groups.sql' },
  { category: 'table', name: 'org_migration_state', file: 'org_migration_state.sql' },
];

export interface ObjectPlan {
  object: ChefObject;
  action: 'create' | 'adopt' | 'incompatible';
  /** Why it cannot be adopted (action 'incompatible'). */
  problems: string[];
  /** Differences from Chef's definition that do not stop mover. */
  notes: string[];
}

// What each column mover reads or writes must accept. A type outside these
// would reject or change values mover writes.
type TypeRule = (type: string) => boolean;
const varcharAtLeast =
  (n: number): TypeRule =>
  (t) => {
    if (t === 'text' || t === 'character varying') return true;
    const m = /^character varying\((\d+)\)$/.exec(t);
    return !!m && Number(m[1]) >= n;
  };
const hex32: TypeRule = (t) => t === 'character(32)' || varcharAtLeast(32)(t);
const text: TypeRule = (t) => t === 'text' || t.startsWith('character varying');
const timestamp: TypeRule = (t) => t === 'timestamp without time zone' || t === 'timestamp with time zone';

interface ColumnRule {
  name: string;
  rule: TypeRule;
  want: string;
}

const OBJECT_COLUMNS: ColumnRule[] = [
  { name: 'id', rule: varcharAtLeast(36), want: 'VARCHAR(36)' },
  { name: 'org_id', rule: hex32, want: 'CHAR(32)' },
  { name: 'authz_id', rule: hex32, want: 'CHAR(32)' },
  { name: 'name', rule: text, want: 'TEXT' },
  { name: 'last_updated_by', rule: hex32, want: 'CHAR(32)' },
  { name: 'created_at', rule: timestamp, want: 'TIMESTAMP' },
  { name: 'updated_at', rule: timestamp, want: 'TIMESTAMP' },
];

const STATE_COLUMNS: ColumnRule[] = [
  { name: 'org_name', rule: text, want: 'TEXT' },
  { name: 'org_id', rule: varcharAtLeast(32), want: 'VARCHAR(36)' },
  { name: 'state', rule: (t) => t === 'org_state', want: 'org_state' },
  { name: 'fail_location', rule: varcharAtLeast(30), want: 'VARCHAR(50)' },
  { name: 'migration_start', rule: timestamp, want: 'TIMESTAMP' },
  { name: 'migration_end', rule: timestamp, want: 'TIMESTAMP' },
  { name: 'migration_type', rule: varcharAtLeast(30), want: 'TEXT' },
];

/** Unique keys Chef defines, by table; the ones marked required are what mover's statements rely on. */
const KEYS: Record<string, { columns: string[]; required: boolean }[]> = {
  containers: [
    { columns: ['id'], required: false },
    { columns: ['authz_id'], required: false },
    { columns: ['org_id', 'name'], required: false },
  ],
  groups: [
    { columns: ['id'], required: false },
    { columns: ['authz_id'], required: false },
    { columns: ['org_id', 'name'], required: false },
  ],
  // insertOrgs reads a duplicate (org, type) as "already captured": it needs this key.
  org_migration_state: [{ columns: ['migration_type', 'org_id'], required: true }],
};

export async function planChefObjects(c: DbClient): Promise<ObjectPlan[]> {
  const out: ObjectPlan[] = [];
  for (const object of CHEF_OBJECTS) {
    const plan: ObjectPlan = { object, action: 'adopt', problems: [], notes: [] };
    if (object.category === 'type') await checkType(c, plan);
    else await checkTable(c, plan, object.name === 'org_migration_state' ? STATE_COLUMNS : OBJECT_COLUMNS);
    if (plan.action !== 'create' && plan.problems.length) plan.action = 'incompatible';
    out.push(plan);
  }
  return out;
}

async function checkType(c: DbClient, plan: ObjectPlan): Promise<void> {
  const { rows } = await c.query(
    `SELECT t.typtype, array(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels
     FROM pg_type t WHERE t.oid = to_regtype($1)`,
    [plan.object.name],
  );
  if (!rows.length) {
    plan.action = 'create';
    return;
  }
  if (rows[0].typtype !== 'e') {
    plan.problems.push(`type ${plan.object.name} exists but is not an enum`);
    return;
  }
  const labels: string[] = rows[0].labels;
  const missing = ORG_STATES.filter((v) => !labels.includes(v));
  if (missing.length) plan.problems.push(`type org_state lacks the value(s) ${missing.join(', ')}`);
  const extra = labels.filter((v) => !(ORG_STATES as readonly string[]).includes(v));
  if (extra.length) plan.notes.push(`type org_state has values Chef does not define: ${extra.join(', ')}`);
}

async function checkTable(c: DbClient, plan: ObjectPlan, columns: ColumnRule[]): Promise<void> {
  const table = plan.object.name;
  const rel = await c.query(`SELECT to_regclass($1)::oid AS oid`, [`"${table}"`]);
  const oid = rel.rows[0].oid;
  if (!oid) {
    plan.action = 'create';
    return;
  }
  const cols = await c.query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null, a.atthasdef AS has_default
     FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`,
    [oid],
  );
  const have = new Map(cols.rows.map((r) => [r.name as string, r as { type: string; not_null: boolean; has_default: boolean }]));
  for (const col of columns) {
    const h = have.get(col.name);
    if (!h) plan.problems.push(`${table}.${col.name} is missing`);
    else if (!col.rule(h.type)) plan.problems.push(`${table}.${col.name} is ${h.type}; mover needs ${col.want} (or a type that holds the same values)`);
  }
  // mover's INSERTs name only Chef's columns: another required column would reject them.
  const known = new Set(['id', ...columns.map((c) => c.name)]);
  for (const [name, h] of have) {
    if (known.has(name)) continue;
    if (h.not_null && !h.has_default) plan.problems.push(`${table}.${name} is NOT NULL without a default; mover's inserts do not set it`);
    else plan.notes.push(`${table}.${name} is not in Chef's definition; mover leaves it alone`);
  }
  const keys = await c.query(
    `SELECT array(SELECT a.attname::text FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k ORDER BY a.attname) AS cols
     FROM pg_index i WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL`,
    [oid],
  );
  const uniques = keys.rows.map((r) => (r.cols as string[]).join(','));
  for (const key of KEYS[table] ?? []) {
    if (uniques.includes([...key.columns].sort().join(','))) continue;
    const what = `${table} has no unique key on (${key.columns.join(', ')})`;
    if (key.required) plan.problems.push(`${what}; mover relies on it to tell an org already captured`);
    else plan.notes.push(`${what} (Chef defines one)`);
  }
  const extras = await c.query(
    `SELECT 'foreign key ' || conname AS what FROM pg_constraint WHERE contype = 'f' AND (conrelid = $1 OR confrelid = $1)
     UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal`,
    [oid],
  );
  for (const r of extras.rows) plan.notes.push(`${table} has a ${r.what}, which Chef does not define; mover's writes pass through it`);
}
