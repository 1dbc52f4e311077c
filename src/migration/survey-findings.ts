// What the estate survey finds in one org, and a batch's totals (docs/domain.md,
// "The estate survey"). Pure: it takes what was read (the plan of the org's
// documents, the darklaunch hashes Chef reads for it, its rows in SQL) and
// names the findings. The rules themselves are the migration's: planObjects
// (src/migration/plan-objects.ts) for the documents it would skip, chefRouting
// (src/chef-routing.ts) for where Chef serves the org.
import { chefRouting, DEFAULT_KEY, orgFlagsKey, OVERRIDE_KEY } from '../chef-routing.js';
import type { OrgSurvey } from './types.js';
import type { ObjectPlan, SkipReason } from './plan-objects.js';

export type { OrgSurvey };

/** The messy-data rules that skip a document, as planObjects names them. */
export const SKIP_RULES = ['missing_authz', 'no_name', 'duplicate_name', 'duplicate_authz', 'bad_id'] as const satisfies readonly SkipReason[];

/** Every finding, by name: what GET /survey counts and GET /survey/orgs?finding= filters on. */
export const FINDINGS = [
  'missing_database',
  'unreadable_database',
  ...SKIP_RULES,
  'no_requester',
  'on_sql_unmigrated',
  'on_couchdb_migrated',
  'split_routing',
  'dark_now',
  'dl_not_hash',
  'dl_odd_value',
  'foreign_rows',
  'preflight_refused',
] as const;
export type Finding = (typeof FINDINGS)[number];

/** States in which phase_2_migration has moved the org: Chef should serve it from SQL. */
const MIGRATED = new Set(['completed', 'purge_started', 'purge_successful']);
/** States from which a migration run may still take the org (or capture it, when it has none): its preflight applies. */
export const stillToMigrate = (state: string | null) => state === null || ['holding', 'ready', 'failed'].includes(state);

/** One darklaunch key as read: its hash, or its type where it is not one. */
export type KeyRead = { hash: Record<string, string> } | { type: string };

type ServedFrom = NonNullable<OrgSurvey['served_from']>;

/** What the darklaunch hashes Chef reads for the org say: where it is served from, what is wrong with them. */
export function darklaunchFindings(
  org: string,
  state: string | null,
  reads: { dl_default: KeyRead; dl_org: KeyRead; dl_override: KeyRead },
): { served_from: ServedFrom | null; findings: Finding[]; problems: string[] } {
  const keys: [string, KeyRead][] = [
    [DEFAULT_KEY, reads.dl_default],
    [orgFlagsKey(org), reads.dl_org],
    [OVERRIDE_KEY, reads.dl_override],
  ];
  const findings: Finding[] = [];
  const problems: string[] = [];
  const notHashes = keys.flatMap(([key, r]) => ('type' in r ? [`${key} is a ${r.type}, not a hash: Chef answers 500`] : []));
  if (notHashes.length) findings.push('dl_not_hash');
  problems.push(...notHashes);
  // Chef makes 1 of exactly "true" and 0 of exactly "false", and keeps any other string as it is.
  const odd = keys.flatMap(([key, r]) =>
    'hash' in r ? Object.entries(r.hash).flatMap(([f, v]) => (v === 'true' || v === 'false' ? [] : [`${key} ${f} = ${JSON.stringify(v)}`])) : [],
  );
  if (odd.length) findings.push('dl_odd_value');
  problems.push(...odd);
  const hashes = keys.map(([, r]) => ('hash' in r ? r.hash : null));
  if (hashes.some((h) => h === null)) return { served_from: null, findings, problems };
  const routing = chefRouting(org, { dl_default: hashes[0]!, dl_org: hashes[1]!, dl_override: hashes[2]! });
  const served_from: ServedFrom = routing.containers === routing.groups ? routing.containers : 'split';
  if (served_from === 'split') findings.push('split_routing');
  if (served_from !== 'couchdb' && stillToMigrate(state)) findings.push('on_sql_unmigrated');
  if (served_from !== 'sql' && state !== null && MIGRATED.has(state)) findings.push('on_couchdb_migrated');
  if (routing.down) findings.push('dark_now');
  return { served_from, findings, problems };
}

/** The first this many skipped documents of an org are kept with its result (every one is counted by rule). */
export const SKIPPED_KEPT = 1000;

/** The findings of an org's planned documents: each rule that would skip one, and requesters set to zeros. */
export function planFindings(plan: ObjectPlan): { findings: Finding[]; skipped: Record<string, number> } {
  const skipped: Record<string, number> = {};
  for (const s of plan.skipped) skipped[s.reason] = (skipped[s.reason] ?? 0) + 1;
  const findings: Finding[] = SKIP_RULES.filter((r) => skipped[r]);
  if (plan.noRequester.length) findings.push('no_requester');
  return { findings, skipped };
}

/**
 * A batch's totals, summed over batches for GET /survey: orgs by finding
 * (`finding:<name>`), documents skipped by rule (`skipped:<rule>`), sizes,
 * and the copy times the window estimate takes (`to_migrate*`: the orgs a
 * migration would still move, their database read and no preflight refusal).
 */
export function batchTotals(orgs: OrgSurvey[]): Record<string, number> {
  const t: Record<string, number> = { orgs: orgs.length };
  const add = (k: string, n: number | null) => (t[k] = (t[k] ?? 0) + (n ?? 0));
  for (const o of orgs) {
    for (const f of o.findings) add(`finding:${f}`, 1);
    for (const [rule, n] of Object.entries((o.detail.skipped_by_rule as Record<string, number> | undefined) ?? {})) add(`skipped:${rule}`, n);
    add('containers', o.containers);
    add('groups', o.groups);
    add('documents', o.documents);
    add('bytes', o.bytes);
    if (o.copy_ms === null) continue;
    add('copied', 1);
    add('copy_ms', o.copy_ms);
    if (stillToMigrate(o.migration_state) && !o.refusal) {
      add('to_migrate', 1);
      add('to_migrate_copy_ms', o.copy_ms);
    }
  }
  return t;
}
