// Before mover changes where orgs are served from, it checks the routing Chef
// will actually apply. Chef's front end reads dl_default, then dl_org_<org>,
// then dl_override, each overriding the one before field by field: a
// couchdb_containers, couchdb_groups or 503_mode left in dl_override silently
// overrides every org mover routes, and dl_default decides every org without
// flags of its own. Run before phase 1's and phase 3's migrations, before the
// dl_default flip (step 2.6), and before any migration or revert run.
import type { Context } from '../context.js';
import { withTimeout } from '../stores/health.js';
import { chefTrue, DEFAULT_KEY, orgKey, OVERRIDE_KEY, ROUTING_FIELDS } from '../darklaunch.js';
import { StateConflictError, errorMessage } from '../errors.js';

/** What dl_default must say now: orgs without their own flags on CouchDB (before step 2.6), on SQL (after it), or either. */
export type ExpectedDefault = 'couchdb' | 'sql' | 'any';

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
export async function routingPreflight(ctx: Context, expect: ExpectedDefault): Promise<{ dl_default: Record<string, string>; dl_override: Record<string, string> }> {
  const cli = redisCli(ctx.config.darklaunchRedisUrl);
  const problems: RoutingProblem[] = [];
  let dlDefault: Record<string, string>;
  let dlOverride: Record<string, string>;
  try {
    await withTimeout(ctx.darklaunchRedis.ping(), PING_TIMEOUT_MS);
    [dlDefault, dlOverride] = await Promise.all([ctx.darklaunchRedis.hgetall(DEFAULT_KEY), ctx.darklaunchRedis.hgetall(OVERRIDE_KEY)]);
  } catch (err) {
    throw new RoutingPreflightError([{ key: DEFAULT_KEY, problem: `the darklaunch Redis did not answer (${errorMessage(err)}); while it is down Chef answers 503 for every org` }]);
  }
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
  if (chefTrue(dlDefault['503_mode'])) {
    problems.push({ key: DEFAULT_KEY, field: '503_mode', value: dlDefault['503_mode'], problem: `${DEFAULT_KEY}.503_mode = "${dlDefault['503_mode']}" takes down every org without its own 503_mode`, fix: `${cli} HDEL ${DEFAULT_KEY} 503_mode` });
  }
  // Under DRY_RUN the flip of step 2.6 was never written: dl_default stays as it was.
  if (expect !== 'any' && !ctx.darklaunch.dryRun) {
    const wantTrue = expect === 'couchdb';
    for (const field of ['couchdb_containers', 'couchdb_groups']) {
      if (chefTrue(dlDefault[field]) === wantTrue) continue;
      const now = field in dlDefault ? `"${dlDefault[field]}"` : 'not set (Chef reads that as false: SQL)';
      problems.push({
        key: DEFAULT_KEY,
        field,
        value: dlDefault[field],
        problem: wantTrue
          ? `${DEFAULT_KEY}.${field} is ${now}: orgs without their own flags would be served from SQL before their data is there; before step 2.6 it must be "true"`
          : `${DEFAULT_KEY}.${field} is ${now}: step 2.6 routes orgs without their own flags to SQL; it must be "false" now`,
        fix: `${cli} HSET ${DEFAULT_KEY} ${field} ${wantTrue}`,
      });
    }
  }
  if (problems.length) throw new RoutingPreflightError(problems);
  return { dl_default: dlDefault, dl_override: dlOverride };
}

/**
 * Before dl_default flips to SQL (step 2.6): every org captured for
 * phase_2_migration and not yet migrated must be pinned to CouchDB by flags of
 * its own, or the flip moves it to SQL, where its data is not.
 */
export async function unpinnedOrgs(ctx: Context, names: string[]): Promise<string[]> {
  const unpinned: string[] = [];
  for (let i = 0; i < names.length; i += 5000) {
    const batch = names.slice(i, i + 5000);
    const results = await ctx.darklaunchRedis.pipeline(batch.map((n) => ['hmget', orgKey(n), 'couchdb_containers', 'couchdb_groups'])).exec();
    batch.forEach((n, j) => {
      const [err, values] = results?.[j] ?? [new Error('no reply'), null];
      if (err) throw err;
      const [c, g] = values as (string | null)[];
      if (!chefTrue(c) || !chefTrue(g)) unpinned.push(n);
    });
  }
  return unpinned;
}
