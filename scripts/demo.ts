// npm run demo — the first thing to run. Starts an in-process CouchDB-protocol
// server seeded with a few hundred generated orgs (a pre-created one, one with
// missing authz joins, one with no database, one with messy documents), the
// API and two workers against the local Redis and Postgres, and drives a whole
// migration through the HTTP API, as an operator would with curl.
import { buildApp } from '../src/api/app.js';
import { closeContext, createContext } from '../src/context.js';
import { migrate } from '../src/db/migrate.js';
import { countObjects } from '../src/db/org-objects.js';
import { hex32, seedEstate, type OrgSpec } from '../src/dev/estate.js';
import { createLogger } from '../src/log.js';
import { TYPES } from '../src/stores/couch-docs.js';
import { startFleet } from '../src/workers/fleet.js';
import { checkServicesOrExit, createStack } from './lib/stack.js';

const ORGS = Number(process.env.DEMO_ORGS ?? 300);
const T = 'phase_2_migration';
const say = (s: string) => process.stdout.write(s + '\n');
const started = Date.now();

await checkServicesOrExit();
say(`mover demo: ${ORGS} generated orgs, CouchDB-protocol server in memory, local Redis and Postgres`);
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
const workers = [startFleet(createContext(stack.config, log), { concurrency: 4 }), startFleet(createContext(stack.config, log), { concurrency: 4 })];
say(`API at ${address} (Bull Board: ${address}/admin/queues?token=${stack.config.apiToken}), two worker processes' worth of workers`);

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(address + path, {
    method,
    headers: { authorization: `Bearer ${stack.config.apiToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let exitCode = 0;
try {
  say('\n1. refresh the account snapshot      POST /account/refresh');
  await api('POST', '/account/refresh');
  let account;
  do {
    await sleep(200);
    account = await api('GET', '/account');
  } while (account.state === 'refreshing' || !account.refreshedAt);
  say(`   ${account.orgs} orgs (${account.precreated} pre-created), ${account.authzJoins} authz joins`);

  say('2. capture the orgs as holding       POST /migrations/phase_2_migration/orgs');
  const cap = await api('POST', `/migrations/${T}/orgs`, { orgs: specs.map((s) => s.name) });
  say(`   inserted ${cap.inserted.length}, duplicate ${cap.duplicate.length}, unknown/pre-created ${cap.unknown.length} (${cap.unknown.join(', ')})`);

  say('3. ready them                        POST /migrations/phase_2_migration/ready');
  say(`   ${(await api('POST', `/migrations/${T}/ready`, {})).updated} orgs ready`);

  say('4. migrate all, concurrency 8        POST /migrations/phase_2_migration/start');
  await api('PUT', '/settings/sleep-time', { ms: 0 });
  // Nothing writes to the demo estate; production keeps the runbook's 5 s.
  await api('PUT', '/settings/drain-wait', { ms: 200, acknowledgeRisk: true });
  say('   (drain wait lowered to 200 ms for the demo: no Chef API writes here; production keeps 5 s)');
  const { runId } = await api('POST', `/migrations/${T}/start`, { count: 'all', concurrency: 8 });
  let status;
  for (;;) {
    await sleep(500);
    status = await api('GET', `/migrations/${T}/status`);
    say(`   run ${runId}: ${status.state.padEnd(7)} finished ${status.orgs_completed}, in progress ${status.objects_in_progress}, waiting ${status.objects_remaining}, failed ${status.objects_failed}`);
    if (status.state === 'ready') break;
  }

  const byState: Record<string, string[]> = {};
  let cursor: string | null = null;
  const failed: string[] = [];
  do {
    const page: any = await api('GET', `/migrations/${T}/orgs?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const o of page.orgs) {
      (byState[o.state] ??= []).push(o.org_name);
      if (o.state === 'failed') failed.push(`${o.org_name} (failed at ${o.fail_location})`);
      if (o.state === 'failed' && !o.fail_location) exitCode = 1;
      if (!['completed', 'failed'].includes(o.state)) exitCode = 1;
    }
    cursor = page.next_cursor;
  } while (cursor);
  const rows = await countObjects(apiCtx.db);
  const dl = await api('GET', '/orgs/demo-no-database');

  say('\nresult');
  say('  orgs by state     ' + Object.entries(byState).map(([s, n]) => `${s}: ${n.length}`).join(', '));
  for (const f of failed) say(`  failed            ${f}`);
  say(`  rows per table    containers: ${rows.containers}, groups: ${rows.groups}`);
  say(`  failed org routed couchdb_containers=${dl.darklaunch.couchdb_containers}, 503_mode=${dl.darklaunch['503_mode']} (served from CouchDB, not dark)`);
  say(`  fatal stop        ${status.fatal_stop}`);
  say(`  elapsed           ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (status.fatal_stop) exitCode = 1;
} catch (err) {
  say(`demo failed: ${(err as Error).message}`);
  exitCode = 1;
} finally {
  await Promise.all(workers.map((w) => w.close(5000)));
  await app.close();
  await closeContext(apiCtx);
  await stack.dropAll();
}
say(exitCode === 0 ? '\ndemo ok: every captured org is completed, or failed with its step named and served from CouchDB' : '\ndemo found a problem (see above)');
process.exit(exitCode);
