// npm run demo — the first thing to run; needs nothing running. Uses the local
// Redis and PostgreSQL where they answer, else starts throwaway ones (and
// removes them at the end); seeds a CouchDB-protocol server in memory with a
// few hundred generated orgs (a pre-created one, one with missing authz
// joins, one with no database, one with messy documents); starts the api and
// two workers' worth of workers; and drives the runbook itself, as the
// product is used: phases 1 to 4 through POST /phases/:n/start, each manual
// step confirmed, with the CLI's live progress, then the final table.
// `npm run demo -- --keep` leaves it all up and prints where to look.
// `npm run demo -- --couchdb URL` (or DEMO_COUCHDB_URL=URL, which keeps the
// password out of the process list) runs the same on any CouchDB (real or
// not, credentials in the URL) instead of the one in memory: it seeds its
// orgs there (opscode_account and chef_<guid> databases), so it refuses a
// CouchDB that already has an opscode_account, and deletes what it made at
// the end. Credentials are never printed (http://admin:***@host:port).
// However it stops (the end, Ctrl-C, SIGTERM, SIGHUP, an error), it removes
// what it made; its throwaway servers run in their own process group, so a
// terminal's Ctrl-C reaches only the demo, which stops them last.
import { buildApp } from '../src/api/app.js';
import type { Api } from '../src/cli/client.js';
import { apiFromEnv } from '../src/cli/client.js';
import { watchPhase, type Out } from '../src/cli/progress.js';
import type { OrgsPage, OrgView, PhaseView, RunStatus } from '../src/cli/replies.js';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { countObjects } from '../src/db/org-objects.js';
import { hex32, seedEstate, type OrgSpec } from '../dev/estate.js';
import { createLogger } from '../src/log.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { startFleet } from '../src/workers/fleet.js';
import { couchFetch, maskCredentials, welcomeOf, type BenchCouch } from './lib/couch.js';
import { couchUnusable, EXAMPLE_URL } from '../dev/couchdb-server.js';
import { dropEstate } from '../dev/estate.js';
import { createStack, ensureServices } from './lib/stack.js';
import { throwawayServers } from '../dev/processes.js';

throwawayServers.ownProcessGroup = true;

const ORGS = Number(process.env.DEMO_ORGS ?? 300);
const KEEP = process.argv.includes('--keep');
const T = 'phase_2_migration';
const ACCOUNT_DB = 'opscode_account';
// Every line the demo prints goes through the mask: no password of a --couchdb URL is ever shown.
const say = (s: string) => process.stdout.write(maskCredentials(s) + '\n');
const stdout: Out = { tty: Boolean(process.stdout.isTTY), write: (s) => process.stdout.write(maskCredentials(s)) };
/** How to write the URL: the one text printed unmasked (its password is a placeholder). */
const URL_HINT = 'give one such as http://admin:PASSWORD@127.0.0.1:5984';
/** One line and exit 1: what went wrong before the demo made anything (masked), then how to mend it; never a stack trace. */
const refuse = (line: string, hint?: string): never => {
  process.stderr.write(maskCredentials(line) + (hint ? `; ${hint}` : '') + '\n');
  process.exit(1);
};
const started = Date.now();

/** What the demo made, undone last made first at the end, however it ends. */
const teardown: { what: string; undo: () => Promise<unknown> }[] = [];
let ending: Promise<never> | undefined;
/** Removes what the demo made, once (a second signal while it does changes nothing), then exits with `code`. */
function shutdown(code: number, why?: string): Promise<never> {
  ending ??= (async () => {
    if (why) process.stderr.write(maskCredentials(why) + '\n');
    for (const step of teardown.reverse()) {
      await step.undo().catch((err) => process.stderr.write(maskCredentials(`  could not ${step.what}: ${(err as Error).message}`) + '\n'));
    }
    process.exit(code);
  })();
  return ending;
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(130, `\n${signal}: removing what the demo made`));
process.on('uncaughtException', (err) => void shutdown(1, `demo failed: ${err.message}`));
process.on('unhandledRejection', (err) => void shutdown(1, `demo failed: ${err instanceof Error ? err.message : String(err)}`));

/** The value of --couchdb URL or --couchdb=URL, if given. */
function couchdbArg(argv: string[]): string | undefined {
  const i = argv.findIndex((a) => a === '--couchdb' || a.startsWith('--couchdb='));
  if (i < 0) return undefined;
  const value = argv[i].startsWith('--couchdb=') ? argv[i].slice('--couchdb='.length) : argv[i + 1];
  if (!value || value.startsWith('--')) refuse('--couchdb needs a URL', URL_HINT);
  return value;
}

/** Why the demo will not use the CouchDB at `url`, in one line, and how to mend it; undefined when it may. */
async function unusable(url: string): Promise<[string, string?] | undefined> {
  // Reachable, the credentials taken, an admin's (dev/couchdb-server.ts), as the tests and benchmarks check theirs.
  const why = await couchUnusable(url, '--couchdb');
  if (why) return why;
  const shown = maskCredentials(url);
  const account = await couchFetch(url, `/${ACCOUNT_DB}`, { method: 'HEAD', signal: AbortSignal.timeout(5000) }).catch((err) => err as Error);
  if (account instanceof Error) return [`--couchdb: cannot reach a CouchDB at ${shown}: ${account.message}`];
  if (account.status === 200) {
    return [
      `the CouchDB at ${shown} already has an ${ACCOUNT_DB} database: the demo seeds generated orgs and never mixes them into an estate`,
      `point --couchdb at an empty CouchDB (e.g. docker compose's couchdb service: docker compose up -d couchdb, then --couchdb ${EXAMPLE_URL})`,
    ];
  }
  if (account.status !== 404) return [`the CouchDB at ${shown} answered HEAD /${ACCOUNT_DB} with HTTP ${account.status}`];
  return undefined;
}

const fromArg = couchdbArg(process.argv.slice(2));
if (fromArg !== undefined)
  say('note: --couchdb puts its password in the process list (ps) for as long as the demo runs; DEMO_COUCHDB_URL=URL npm run demo keeps it out');
const couchUrl = (fromArg ?? (process.env.DEMO_COUCHDB_URL || undefined))?.trim().replace(/\/+$/, '');
// The org guids are chosen here, so the databases the demo makes are known even if seeding stops half-way.
const specs: OrgSpec[] = Array.from({ length: ORGS - 4 }, (_, i) => ({ name: `demo-org-${String(i).padStart(4, '0')}`, otherDocs: 3 }));
specs.push({ name: 'demo-precreated', precreated: true });
specs.push({ name: 'demo-missing-authz', missingAuthz: 5 });
specs.push({ name: 'demo-no-database', noDatabase: true });
specs.push({
  name: 'demo-messy',
  extraDocs: [
    { _id: hex32(), 'couchrest-type': TYPES.container, containername: '' },
    { _id: hex32(), 'couchrest-type': TYPES.group, groupname: 'admins' },
  ],
});
for (const spec of specs) spec.guid = hex32();

let given: BenchCouch | undefined;
/** Whether this run made opscode_account in the --couchdb CouchDB (then it and the orgs' databases are the demo's to delete). */
let madeAccountDb = false;
if (couchUrl !== undefined) {
  const why = await unusable(couchUrl);
  if (why) refuse(...why);
  const version = await welcomeOf(couchUrl).catch((err) => refuse(`the server at ${couchUrl} does not answer as a CouchDB: ${(err as Error).message}`));
  given = {
    kind: 'given',
    url: couchUrl,
    version,
    accountDb: ACCOUNT_DB,
    pids: () => [],
    async stop() {
      if (!madeAccountDb) return;
      madeAccountDb = false;
      const n = await dropEstate(
        couchUrl,
        ACCOUNT_DB,
        specs.filter((s) => !s.noDatabase).map((s) => s.guid!),
      );
      say(`deleted the demo's ${n} databases from ${couchUrl}`);
    },
  };
}

const services = await ensureServices(say);
teardown.push({ what: 'stop the throwaway servers', undo: () => services.stop() });
const stack = await createStack('demo', {}, { couch: given ?? { kind: 'pouchdb' } });
teardown.push({ what: 'remove what the demo made', undo: () => stack.dropAll() });
say(
  given
    ? `mover demo: ${ORGS} generated orgs in ${stack.couch.version} at ${stack.couch.url}`
    : `mover demo: ${ORGS} generated orgs in a CouchDB-protocol server in memory (${stack.couch.version})`,
);
const log = createLogger(process.env.LOG_LEVEL ?? 'silent', 'demo');
const apiCtx = createContext(stack.config, log);
teardown.push({ what: "close the api's stores", undo: () => closeContext(apiCtx) });
await migrate(apiCtx.db);

try {
  if (given) {
    const created = await couchFetch(given.url, `/${ACCOUNT_DB}`, { method: 'PUT' });
    // Someone made it since the check: it is theirs, never the demo's to seed or delete.
    if (created.status === 412) throw new Error(`it has an ${ACCOUNT_DB} database now; point --couchdb at an empty CouchDB`);
    if (!created.ok) throw new Error(`creating ${ACCOUNT_DB} answered HTTP ${created.status} ${(await created.text()).trim()}`);
    madeAccountDb = true;
  }
  await seedEstate(stack.couch.url, specs, { accountDb: stack.couch.accountDb });
} catch (err) {
  await shutdown(1, `seeding ${stack.couch.url} failed: ${(err as Error).message}`);
}
say(`seeded ${specs.length} orgs into ${stack.couch.url}`);

const app = await buildApp(apiCtx);
teardown.push({ what: 'close the api', undo: () => app.close() });
const address = await app.listen({ host: '127.0.0.1', port: 0 });
const workers = [
  startFleet(createContext(stack.config, log), { concurrency: 4, phaseTickMs: 300 }),
  startFleet(createContext(stack.config, log), { concurrency: 4, phaseTickMs: 300 }),
];
teardown.push({ what: 'stop the workers', undo: () => Promise.all(workers.map((w) => w.close(5000))) });
const api: Api = apiFromEnv({ MOVER_API_URL: address, MOVER_API_TOKEN: stack.config.apiToken, USER: 'demo' });
say(`api at ${address}, with two worker processes' worth of workers`);
say(`watch it on the runbook page: ${address}/login?next=/runbook   (token: ${stack.config.apiToken})\n`);

/** Starts phase n and follows it, confirming each manual step it waits for, as an operator would once it is done. */
async function runPhase(n: number, body: Record<string, unknown>): Promise<PhaseView> {
  say(`— phase ${n}: POST /phases/${n}/start ${JSON.stringify(body).replace(/"orgs":\[[^\]]*\]/, '"orgs":[…]')}`);
  await api.call('POST', `/phases/${n}/start`, body);
  for (;;) {
    const phase = await watchPhase(api, n, stdout, { everyMs: 500 });
    if (phase.state !== 'waiting') return phase;
    const step = phase.steps.find((s) => s.state === 'waiting_confirmation');
    if (!step) throw new Error(`phase ${n} is waiting, but no step of it waits for a confirmation`);
    say(`  (the demo does it: ${(step.detail?.command as string | undefined) ?? step.title})`);
    await api.call('POST', `/phases/${n}/steps/${step.id}/confirm`, { by: 'demo', note: 'done by the demo' });
  }
}

let exitCode = 0;
try {
  // Nothing writes to the demo estate; production keeps the runbook's 5 s.
  await api.call('PUT', '/settings/drain-wait', { ms: 200, acknowledge_risk: true });
  say('(drain wait lowered to 200 ms: no Chef API writes here; production keeps 5 s)\n');
  const phase1Orgs = specs.slice(0, 20).map((s) => s.name);
  const phases = [
    await runPhase(1, { orgs: phase1Orgs, concurrency: 8 }),
    await runPhase(2, {}),
    await runPhase(3, { concurrency: 8, sleep_time_ms: 0 }),
    await runPhase(4, { confirm: 'purge-couchdb-data' }),
  ];
  for (const p of phases) if (p.state !== 'completed') exitCode = 1;

  const byState: Record<string, string[]> = {};
  let cursor: string | null = null;
  const failed: string[] = [];
  do {
    const page: OrgsPage = await api.call<OrgsPage>('GET', `/migrations/${T}/orgs?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const o of page.orgs) {
      (byState[o.state] ??= []).push(o.org_name);
      if (o.state === 'failed') failed.push(`${o.org_name} (failed at ${o.fail_location})`);
      if (!['completed', 'failed', 'purge_successful'].includes(o.state)) exitCode = 1;
    }
    cursor = page.next_cursor;
  } while (cursor);
  const rows = await countObjects(apiCtx.db);
  const dl = await api.call<OrgView>('GET', '/orgs/demo-no-database');
  const run = await api.call<RunStatus>('GET', `/migrations/${T}/status`);

  say('\nresult');
  say('  phases            ' + phases.map((p) => `${p.phase}: ${p.state}`).join(', '));
  say(
    '  orgs by state     ' +
      Object.entries(byState)
        .map(([s, n]) => `${s}: ${n.length}`)
        .join(', '),
  );
  for (const f of failed) say(`  failed            ${f}`);
  say(`  rows per table    containers: ${rows.containers}, groups: ${rows.groups}`);
  say(`  failed org routed couchdb_containers=${dl.darklaunch.couchdb_containers}, 503_mode=${dl.darklaunch['503_mode']} (served from CouchDB, not dark)`);
  say(`  last run          fatal_stop ${run.fatal_stop}, breaker ${run.breaker?.state}`);
  say(`  elapsed           ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (run.fatal_stop) exitCode = 1;
} catch (err) {
  say(`demo failed: ${(err as Error).message}`);
  exitCode = 1;
}
say(
  exitCode === 0
    ? '\ndemo ok: the four phases completed; every org is migrated and purged from CouchDB, or failed with its step named and served from CouchDB'
    : '\ndemo found a problem (see above)',
);

if (KEEP) {
  const env = `MOVER_API_URL=${address} MOVER_API_TOKEN=${stack.config.apiToken}`;
  say(`\nthe stack stays up (Ctrl-C to remove it${given ? `, with the demo's databases in ${given.url}` : ''}):
  API            ${address}
  sign in        ${address}/login   (token: ${stack.config.apiToken})
  runbook page   ${address}/runbook
  API docs       ${address}/docs
  Bull Board     ${address}/admin/queues
  CLI            ${env} npx mover phase list
                 ${env} npx mover orgs show demo-no-database
                 ${env} npx mover run status`);
  // Until a signal: its handler removes it all (shutdown).
  await new Promise<never>(() => {});
}
await shutdown(exitCode);
