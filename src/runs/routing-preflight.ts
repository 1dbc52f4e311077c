// Before mover changes where orgs are served from, it checks the routing Chef
// will actually apply. Chef's front end reads dl_default, then dl_org_<org>,
// then dl_override, each overriding the one before field by field: a
// couchdb_containers, couchdb_groups or 503_mode left in dl_override silently
// overrides every org mover routes, and dl_default decides every org without
// flags of its own. Run before phase 1's and phase 3's migrations, before the
// dl_default flip (step 2.6), and before any migration or revert run.
import type { Context } from '../context.js';
import type { ExpectedDefault } from '../frame/kind.js';
import { withTimeout } from '../stores/health.js';
import {
  chefRouting,
  DEFAULT_KEY,
  keyTypeEffect,
  orgFlagsKey,
  OVERRIDE_KEY,
  ROUTING_FIELDS,
  routesToSql,
  takesDown,
  type KeyTypeProblem,
} from '../chef-routing.js';
import { StateConflictError, errorMessage } from '../errors.js';

export type { ExpectedDefault };

export interface RoutingProblem {
  key: string;
  field?: string;
  value?: string;
  problem: string;
  /** The command that clears it, where there is one. */
  fix?: string;
}

export class RoutingPreflightError extends StateConflictError {
  readonly detail: { preflight: RoutingProblem[] };
  constructor(readonly problems: RoutingProblem[]) {
    super(`routing preflight failed: ${problems.map((p) => `${p.problem}${p.fix ? ` (fix: ${p.fix})` : ''}`).join('; ')}`, 'routing_preflight_failed');
    this.detail = { preflight: problems };
  }
}

const PING_TIMEOUT_MS = 3000;

/** How an operator reaches the darklaunch Redis from a shell, for the fix commands. */
function redisCli(url: string): string {
  const u = new URL(url);
  const db = u.pathname.replace('/', '');
  return `redis-cli -h ${u.hostname} -p ${u.port || 6379}${db && db !== '0' ? ` -n ${db}` : ''}`;
}

/** Throws RoutingPreflightError naming every problem; returns what it saw. */
export async function routingPreflight(
  ctx: Context,
  expect: ExpectedDefault,
): Promise<{ dl_default: Record<string, string>; dl_override: Record<string, string> }> {
  const cli = redisCli(ctx.config.darklaunchRedisUrl);
  let wrongTypes: KeyTypeProblem[];
  try {
    await withTimeout(ctx.darklaunchRedis.ping(), PING_TIMEOUT_MS);
    wrongTypes = await ctx.darklaunch.keysNotHashes([DEFAULT_KEY, OVERRIDE_KEY]);
  } catch (err) {
    throw new RoutingPreflightError([
      { key: DEFAULT_KEY, problem: `the darklaunch Redis did not answer (${errorMessage(err)}); while it is down Chef answers 503 for every org` },
    ]);
  }
  // Chef cannot route at all past a key that is not a hash: nothing else is worth checking until it is mended.
  if (wrongTypes.length) {
    throw new RoutingPreflightError(
      wrongTypes.map((p) => ({
        key: p.key,
        value: p.type,
        problem: `${keyTypeEffect(p)}; mover routes nothing until it is a hash again`,
        fix: `inspect it with ${cli} TYPE ${p.key} and ${cli} ${inspectCommand(p)} ${p.key}, then mend it by hand`,
      })),
    );
  }
  const [dlDefault, dlOverride] = await Promise.all([ctx.darklaunch.getHash(DEFAULT_KEY), ctx.darklaunch.getOverride()]);
  const problems: RoutingProblem[] = [];
  for (const field of ROUTING_FIELDS) {
    if (field in dlOverride) {
      problems.push({
        key: OVERRIDE_KEY,
        field,
        value: dlOverride[field],
        problem: `${OVERRIDE_KEY}.${field} = "${dlOverride[field]}" overrides ${field} for every org, whatever mover writes`,
        fix: `${cli} HDEL ${OVERRIDE_KEY} ${field}`,
      });
    }
  }
  if (takesDown(dlDefault['503_mode'])) {
    problems.push({
      key: DEFAULT_KEY,
      field: '503_mode',
      value: dlDefault['503_mode'],
      problem: `${DEFAULT_KEY}.503_mode = "true" takes down every org without its own 503_mode`,
      fix: `${cli} HDEL ${DEFAULT_KEY} 503_mode`,
    });
  }
  // Under DRY_RUN the flip of step 2.6 was never written: dl_default stays as it was.
  if (expect !== 'any' && !ctx.darklaunch.dryRun) {
    const wantSql = expect === 'sql';
    for (const field of ['couchdb_containers', 'couchdb_groups']) {
      if (routesToSql(dlDefault[field]) === wantSql) continue;
      const now = field in dlDefault ? `"${dlDefault[field]}"` : 'not set';
      problems.push({
        key: DEFAULT_KEY,
        field,
        value: dlDefault[field],
        problem: wantSql
          ? `${DEFAULT_KEY}.${field} is ${now}, which Chef reads as CouchDB (only exactly "false" is SQL): step 2.6 routes orgs without their own flags to SQL; it must be "false" now`
          : `${DEFAULT_KEY}.${field} is "false": orgs without their own flags are served from SQL before their data is there; before step 2.6 it must route to CouchDB (any other value, or none)`,
        fix: wantSql ? `${cli} HSET ${DEFAULT_KEY} ${field} false` : `${cli} HSET ${DEFAULT_KEY} ${field} true`,
      });
    }
  }
  if (problems.length) throw new RoutingPreflightError(problems);
  return { dl_default: dlDefault, dl_override: dlOverride };
}

/** The redis-cli command that shows a key of this type whole. */
function inspectCommand(p: KeyTypeProblem): string {
  return { string: 'GET', list: 'LRANGE', set: 'SMEMBERS', zset: 'ZRANGE', stream: 'XRANGE' }[p.type] ?? 'DUMP';
}

/**
 * Before dl_default flips to SQL (step 2.6): every org captured for
 * phase_2_migration and not yet migrated must be pinned to CouchDB by flags of
 * its own, or the flip moves it to SQL, where its data is not. Each org is
 * judged by Chef's rule as it will stand after the flip (dl_default "false",
 * dl_override as it is): unpinned if Chef would then serve its containers or
 * groups from SQL. An org whose dl_org_<org> is not a hash is listed apart:
 * Chef answers 500 for it whatever mover writes, and no flag can be written to it.
 */
export async function unpinnedOrgs(ctx: Context, names: string[]): Promise<{ unpinned: string[]; notHashes: KeyTypeProblem[] }> {
  const afterFlip = { ...(await ctx.darklaunch.getHash(DEFAULT_KEY)), couchdb_containers: 'false', couchdb_groups: 'false' };
  const dlOverride = await ctx.darklaunch.getOverride();
  const unpinned: string[] = [];
  const notHashes: KeyTypeProblem[] = [];
  for (let i = 0; i < names.length; i += 5000) {
    const batch = names.slice(i, i + 5000);
    const own = await ctx.darklaunch.orgHashes(batch);
    batch.forEach((n, j) => {
      const h = own[j];
      if ('type' in h) return void notHashes.push({ key: orgFlagsKey(n), type: h.type });
      const r = chefRouting(n, { dl_default: afterFlip, dl_org: h.hash, dl_override: dlOverride });
      if (r.containers === 'sql' || r.groups === 'sql') unpinned.push(n);
    });
  }
  return { unpinned, notHashes };
}
