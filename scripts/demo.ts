// npm run demo — the first thing to run; needs nothing running. Uses the local
// Redis and PostgreSQL where they answer, else starts throwaway ones (and
// removes them at the end); seeds a CouchDB-protocol server in memory with a
// few hundred generated orgs (a pre-created one, one with missing authz
// joins, one with no database, one with messy documents); starts the api and
// two workers' worth of workers; and drives the runbook itself, as the
// product is used: phases 1 to 4 through POST /phases/:n/start, each manual
// step confirmed, with the CLI's live progress, then the final table.
// `npm run demo -- --keep` leaves it all up and prints where to look.
import { buildApp } from '../src/api/app.js';
import type { Api } from '../src/cli/client.js';
import { apiFromEnv } from '../src/cli/client.js';
import { stdout, watchPhase } from '../src/cli/progress.js';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { countObjects } from '../src/db/org-objects.js';
import { hex32, seedEstate, type OrgSpec } from '../src/dev/estate.js';
import { createLogger } from '../src/log.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { startFleet } from '../src/workers/fleet.js';
import { createStack, ensureServices } from './lib/stack.js';

const ORGS = Number(process.env.DEMO_ORGS ?? 300);
const KEEP = process.argv.includes('--keep');
const T = 'phase_2_migration';
const say = (s: string) => process.stdout.write(s + '\n');
const started = Date.now();

const services = await ensureServices(say);
say(`mover demo: ${ORGS} generated orgs in a CouchDB-protocol server in memory`);
const stack = await createStack('demo', 12);
const log = createLogger(process.env.LOG_LEVEL ?? 'silent', 'demo');
const apiCtx = createContext(stack.config, log);
await migrate(apiCtx.db);

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
await seedEstate(stack.pouch.url, specs);
say(`seeded ${specs.length} orgs into ${stack.pouch.url}`);

const app = await buildApp(apiCtx);
const address = await app.listen({ host: '127.0.0.1', port: 0 });
const workers = [startFleet(createContext(stack.config, log), { concurrency: 4, phaseTickMs: 300 }), startFleet(createContext(stack.config, log), { concurrency: 4, phaseTickMs: 300 })];
const api: Api = apiFromEnv({ MOVER_API_URL: address, MOVER_API_TOKEN: stack.config.apiToken, USER: 'demo' });
say(`api at ${address}, with two worker processes' worth of workers\n`);

/** Starts phase n and follows it, confirming each manual step it waits for, as an operator would once it is done. */
async function runPhase(n: number, body: Record<string, unknown>): Promise<any> {
  say(`— phase ${n}: POST /phases/${n}/start ${JSON.stringify(body).replace(/"orgs":\[[^\]]*\]/, '"orgs":[…]')}`);
  await api.call('POST', `/phases/${n}/start`, body);
  for (;;) {
    const phase = await watchPhase(api, n, stdout, { everyMs: 500 });
    if (phase.state !== 'waiting') return phase;
    const step = phase.steps.find((s: any) => s.state === 'waiting_confirmation');
    say(`  (the demo does it: ${step.detail?.command ?? step.title})`);
    await api.call('POST', `/phases/${n}/steps/${step.id}/confirm`, { by: 'demo', note: 'done by the demo' });
  }
}

let exitCode = 0;
try {
  // Nothing writes to the demo estate; production keeps the runbook's 5 s.
  await api.call('PUT', '/settings/drain-wait', { ms: 200, acknowledgeRisk: true });
  say('(drain wait lowered to 200 ms: no Chef API writes here; production keeps 5 s)\n');
  const phase1Orgs = specs.slice(0, 20).map((s) => s.name);
  const phases = [
    await runPhase(1, { orgs: phase1Orgs, concurrency: 8 }),
    await runPhase(2, {}),
    await runPhase(3, { concurrency: 8, sleepTimeMs: 0 }),
    await runPhase(4, { confirm: 'purge-couchdb-data' }),
  ];
  for (const p of phases) if (p.state !== 'completed') exitCode = 1;

  const byState: Record<string, string[]> = {};
  let cursor: string | null = null;
  const failed: string[] = [];
  do {
    const page: any = await api.call('GET', `/migrations/${T}/orgs?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const o of page.orgs) {
      (byState[o.state] ??= []).push(o.org_name);
      if (o.state === 'failed') failed.push(`${o.org_name} (failed at ${o.fail_location})`);
      if (!['completed', 'failed', 'purge_successful'].includes(o.state)) exitCode = 1;
    }
    cursor = page.next_cursor;
  } while (cursor);
  const rows = await countObjects(apiCtx.db);
  const dl = await api.call('GET', '/orgs/demo-no-database');
  const run = await api.call('GET', `/migrations/${T}/status`);

  say('\nresult');
  say('  phases            ' + phases.map((p) => `${p.phase}: ${p.state}`).join(', '));
  say('  orgs by state     ' + Object.entries(byState).map(([s, n]) => `${s}: ${n.length}`).join(', '));
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
say(exitCode === 0 ? '\ndemo ok: the four phases completed; every org is migrated and purged from CouchDB, or failed with its step named and served from CouchDB' : '\ndemo found a problem (see above)');

if (KEEP) {
  const env = `MOVER_API_URL=${address} MOVER_API_TOKEN=${stack.config.apiToken}`;
  say(`\nthe stack stays up (Ctrl-C to remove it):
  API            ${address}
  sign in        ${address}/login   (token: ${stack.config.apiToken})
  runbook page   ${address}/runbook
  API docs       ${address}/docs
  Bull Board     ${address}/admin/queues
  CLI            ${env} npx mover phase list
                 ${env} npx mover orgs show demo-no-database
                 ${env} npx mover run status`);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
}
await Promise.all(workers.map((w) => w.close(5000)));
await app.close();
await closeContext(apiCtx);
await stack.dropAll();
await services.stop();
process.exit(exitCode);
