// mover — the operator's console (legacy `mover console`), over the HTTP API.
// Every call of the runbook by the operator's words; `--json` on every
// command for scripts; exit codes: 0 done, 1 error, 2 usage, 3 conflict,
// 4 not found. docs/operating.md, "The mover CLI".
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { apiFromEnv, CliError, errorJson, EXIT, type Api } from './client.js';
import { phaseLines, stdout, surveyAgeLine, watchAccount, watchPhase } from './progress.js';
import { surveyCommands } from './survey.js';
import { runCommands } from './runs.js';
import type {
  AccountView,
  AuditPage,
  OrgsCaptured,
  OrgsMoved,
  OrgView,
  PhaseList,
  PhaseStart,
  PhaseView,
  RefreshQueued,
  SettingsView,
  SurveyView,
} from './replies.js';
import { PHASE_2_MIGRATION } from '../queue-names.js';

const T = PHASE_2_MIGRATION;
const api: Api = apiFromEnv();
const program = new Command('mover').description(
  'Move Chef orgs from CouchDB to PostgreSQL: the runbook, runs, orgs and settings of a mover fleet (MOVER_API_URL, MOVER_API_TOKEN)',
);
program.addOption(new Option('--json', 'print the API reply as JSON (for scripts)')).exitOverride().showHelpAfterError();

const json = () => program.opts().json === true;
/** Prints the reply as JSON with --json, else the human lines. */
function show(reply: unknown, lines: () => string | string[]): void {
  if (json()) process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
  else process.stdout.write(`${[lines()].flat().join('\n')}\n`);
}
const int = (v: string) => {
  if (!/^\d+$/.test(v)) throw new CliError(`not a whole number: "${v}"`, EXIT.usage);
  return Number(v);
};
/** Org names from arguments and/or --file (one a line, # comments and blank lines ignored). */
function orgNames(args: string[], file?: string): string[] {
  const fromFile = file
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.replace(/#.*/, '').trim())
        .filter(Boolean)
    : [];
  const names = [...args, ...fromFile];
  if (!names.length) throw new CliError('name at least one org, or give --file', EXIT.usage);
  return names;
}

// --- phases (the runbook) ---
/** `mover phase start`'s options, as commander hands them over. */
interface PhaseStartOptions {
  orgsFile?: string;
  orgs?: string[];
  concurrency?: string;
  sleepTime?: string;
  confirm?: string;
  dryRun?: boolean;
  again?: boolean;
  watch?: boolean;
}
const phase = program.command('phase').description('the runbook: four phases of steps');
phase
  .command('list')
  .description('every phase and its state')
  .action(async () => {
    const r = await api.call<PhaseList>('GET', '/phases');
    show(r, () => r.phases.map((p) => `phase ${p.phase}: ${p.title} — ${p.state}`));
  });
phase
  .command('show <n>')
  .description("a phase's steps, and what a waiting step asks")
  .action(async (n: string) => {
    const r = await api.call<PhaseView>('GET', `/phases/${int(n)}`);
    // Phase 1 says how old the estate survey is.
    const survey = int(n) === 1 ? surveyAgeLine(await api.call<SurveyView>('GET', '/survey')) : null;
    show(r, () => (survey ? [phaseLines(r)[0], survey, ...phaseLines(r).slice(1)] : phaseLines(r)));
  });
phase
  .command('start <n>')
  .description('start (or resume) phase n: 1 migrate listed orgs, 2 route new orgs to SQL, 3 migrate the rest, 4 purge')
  .option('--orgs-file <file>', 'phase 1: the orgs to migrate, one a line')
  .option('--orgs <names...>', 'phase 1: the orgs to migrate')
  .option('--concurrency <n>', 'phases 1 and 3: orgs in flight at once')
  .option('--sleep-time <ms>', 'phase 3: pacing of org starts')
  .option('--confirm <word>', 'phase 4: purge-couchdb-data')
  .option('--dry-run', 'phase 4: report what would be purged, change nothing')
  .option('--again', 'run a phase that has completed again (without it, the api says what that would do and refuses)')
  .option('--watch', 'follow it until it completes, fails or waits for you')
  .action(async (n: string, o: PhaseStartOptions) => {
    const body: Record<string, unknown> = {};
    if (int(n) === 1 && !o.orgsFile && !o.orgs)
      throw new CliError('phase 1 migrates the orgs you name: give them with --orgs <name...> or --orgs-file <file> (one a line)', EXIT.usage);
    if (o.orgsFile || o.orgs) body.orgs = orgNames(o.orgs ?? [], o.orgsFile);
    if (o.concurrency) body.concurrency = int(o.concurrency);
    if (o.sleepTime) body.sleep_time_ms = int(o.sleepTime);
    if (o.confirm) body.confirm = o.confirm;
    if (o.dryRun) body.dry_run = true;
    if (o.again) body.again = true;
    const r = await api.call<PhaseStart>('POST', `/phases/${int(n)}/start`, body);
    const how = r.again ? 'started again' : r.resumed ? 'resumed' : 'started';
    const set = Object.entries(r.settings ?? {}).map(([k, v]) => `${k} ${v}`);
    show(r, () => [
      `phase ${r.phase} ${how} (${r.state}); follow it: mover phase watch ${r.phase}`,
      `  settings it changes: ${set.length ? set.join(', ') : 'none'}`,
    ]);
    if (o.watch && !json()) await finishWatch(await watchPhase(api, int(n), stdout));
  });
phase
  .command('confirm <n> <step>')
  .description('say a manual step is done')
  .option('--by <name>', 'who did it (on the audit record); with named operators, your own name, the default')
  .option('--note <text>', 'what was done')
  .action(async (n: string, step: string, o: { by?: string; note?: string }) => {
    const r = await api.call<PhaseView>('POST', `/phases/${int(n)}/steps/${step}/confirm`, {
      ...(o.by ? { by: o.by } : {}),
      ...(o.note ? { note: o.note } : {}),
    });
    const by = r.steps.find((s) => s.id === step)?.confirmed_by ?? o.by;
    show(r, () => [`step ${step} confirmed by ${by}`, ...phaseLines(r)]);
  });
phase
  .command('watch <n>')
  .description('follow a phase live: its steps, its run, the manual step waiting for you')
  .option('--until-done', 'keep watching through manual steps until the phase completes, fails or halts')
  .action(async (n: string, o: { untilDone?: boolean }) => {
    const r = await watchPhase(api, int(n), json() ? { tty: false, write: () => {} } : stdout, { untilDone: o.untilDone });
    if (json()) show(r, () => '');
    await finishWatch(r);
  });

async function finishWatch(p: PhaseView): Promise<void> {
  if (p.state === 'failed' || p.state === 'halted') throw new CliError(`phase ${p.phase} ${p.state}`, EXIT.error);
}

// --- the account snapshot ---
const account = program.command('account').description('the account snapshot (orgs and AuthJoins from opscode_account)');
account.command('show').action(async () => {
  const r = await api.call<AccountView>('GET', '/account');
  show(r, () => `${r.orgs} orgs (${r.precreated} pre-created), ${r.authz_joins} AuthJoins, refreshed ${r.refreshed_at ?? 'never'} — ${r.state}`);
});
account
  .command('refresh')
  .description('read opscode_account again, and wait for it')
  .option('--no-wait', 'queue it and return')
  .action(async (o: { wait: boolean }) => {
    const job = await api.call<RefreshQueued>('POST', '/account/refresh');
    if (!o.wait) return show(job, () => `refresh queued (job ${job.job_id})`);
    const r = await watchAccount(api, json() ? { tty: false, write: () => {} } : stdout);
    show(r, () => `${stdout.tty ? '\r\x1b[2K' : ''}${r.orgs} orgs (${r.precreated} pre-created), ${r.authz_joins} AuthJoins — ${r.state}`);
    if (r.state === 'failed') throw new CliError('the account refresh failed; see the worker log', EXIT.error);
  });

// --- orgs (the state tracker) ---
const orgs = program.command('orgs').description('orgs in the state tracker');
const typeOpt = () => new Option('--type <type>', 'migration type').default(T);
for (const [name, path, what] of [
  ['capture', 'orgs', 'capture orgs as holding (legacy insert_one_org)'],
  ['ready', 'ready', 'holding → ready (all holding orgs when none is named)'],
  ['hold', 'hold', 'ready → holding'],
  ['reset', 'reset', 'failed → holding; their SQL rows mover wrote are deleted'],
] as const) {
  orgs
    .command(`${name} [names...]`)
    .description(what)
    .option('--file <file>', 'org names, one a line (# comments and blank lines allowed); each line skipped is said, with why')
    .addOption(typeOpt())
    .action(async (names: string[], o: { file?: string; type: string }) => {
      const all = name === 'ready' && !names.length && !o.file;
      const url = `/migrations/${o.type}/${path}`;
      // A file alone goes as the text it is: the api answers line by line (docs/api.md, "Org lists as files").
      const r =
        o.file && !names.length
          ? await api.call<OrgsCaptured | OrgsMoved>('POST', url, readFileSync(o.file, 'utf8'), 'text/plain')
          : await api.call<OrgsCaptured | OrgsMoved>('POST', url, all ? {} : { orgs: orgNames(names, o.file) });
      // A capture answers what it inserted; a move (ready, hold, reset) what it updated.
      const counts = 'inserted' in r ? `inserted ${r.inserted.length}, duplicate ${r.duplicate.length}, unknown ${r.unknown.length}` : `updated ${r.updated}`;
      const skippedLines = (r.lines ?? []).filter((l) => !['inserted', 'duplicate', 'updated'].includes(l.result));
      show(r, () =>
        r.lines
          ? [counts, ...skippedLines.map((l) => `  line ${l.line} (${l.org}): ${l.result}`)]
          : 'unknown' in r
            ? [counts, ...r.unknown.map((u) => `  unknown: ${u}`)]
            : [counts, ...(r.skipped ?? []).map((s) => `  skipped: ${s}`)],
      );
    });
}
/** What Chef does with an org's requests, in one line (GET /orgs/:name's darklaunch.effective). */
function servedBy(e: OrgView['darklaunch']['effective']): string {
  if ('error' in e) return `not at all: ${e.error}`;
  return `containers from ${e.containers === 'sql' ? 'SQL' : 'CouchDB'}, groups from ${e.groups === 'sql' ? 'SQL' : 'CouchDB'}${e.down ? ', down (503)' : ''}`;
}

orgs
  .command('show <name>')
  .description("an org's states, failures and darklaunch flags")
  .action(async (name: string) => {
    const r = await api.call<OrgView>('GET', `/orgs/${encodeURIComponent(name)}`);
    show(r, () => [
      `${r.org_name} (${r.org_id ?? 'not in the snapshot'})${r.precreated ? ' pre-created' : ''}`,
      ...Object.entries(r.states).map(([t, s]) => `  ${t}: ${s.state}${s.fail_location ? ` at ${s.fail_location}: ${s.fail_detail ?? ''}` : ''}`),
      `  darklaunch (own): couchdb_containers=${r.darklaunch.couchdb_containers} couchdb_groups=${r.darklaunch.couchdb_groups} 503_mode=${r.darklaunch['503_mode']}`,
      `  Chef serves it: ${servedBy(r.darklaunch.effective)}`,
      ...(r.failures ?? []).slice(0, 5).map((f) => `  failed ${f.at} in run ${f.run_id} at ${f.step} (${f.kind}): ${f.detail ?? ''}`),
    ]);
  });

// --- runs and revert (src/cli/runs.ts) ---
runCommands(program, api, { show, json, int, out: stdout, orgNames });

// --- the estate survey (src/cli/survey.ts) ---
surveyCommands(program, api, { show, json, int, out: stdout });

// --- settings and audit ---
const settings = program.command('settings').description('pacing, drain wait, breakers, the CouchDB budget');
settings.command('show').action(async () => {
  const r = await api.call<SettingsView>('GET', '/settings');
  show(r, () => Object.entries(r).map(([k, v]) => `${k}: ${JSON.stringify(v)}`));
});
settings
  .command('sleep-time <ms>')
  .description('pacing of org starts (legacy sleep_time); 0 removes it')
  .action(async (ms: string) => {
    const r = await api.call<SettingsView>('PUT', '/settings/sleep-time', { ms: int(ms) });
    show(r, () => `sleep time ${r.sleep_time_ms} ms`);
  });
settings
  .command('drain-wait <ms>')
  .option('--acknowledge-risk', 'below 5000 ms: writes in flight at the 503 switch have less time to land')
  .action(async (ms: string, o: { acknowledgeRisk?: boolean }) => {
    const r = await api.call<SettingsView>('PUT', '/settings/drain-wait', { ms: int(ms), ...(o.acknowledgeRisk ? { acknowledge_risk: true } : {}) });
    show(r, () => `drain wait ${r.drain_wait_ms} ms`);
  });
settings
  .command('couchdb-budget <ms>')
  .description("the live-service guard: CouchDB's p99 request time the fleet slows its starts to keep under; 0 turns it off")
  .action(async (ms: string) => {
    const r = await api.call<SettingsView>('PUT', '/settings/couchdb-budget', { p99_ms: int(ms) });
    show(r, () => (r.couchdb_budget_p99_ms > 0 ? `CouchDB budget: p99 ${r.couchdb_budget_p99_ms} ms` : 'CouchDB budget: off (no guard)'));
  });
program
  .command('audit')
  .description('who changed what, newest first')
  .option('--limit <n>', 'entries', '50')
  .action(async (o: { limit: string }) => {
    const r = await api.call<AuditPage>('GET', `/audit?limit=${int(o.limit)}`);
    show(r, () => r.entries.map((e) => `${e.at}  ${e.actor.padEnd(12)} ${e.action}  ${JSON.stringify(e.detail)}`));
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  const code = err instanceof CliError ? err.exitCode : EXIT.error;
  // With --json a script reads the failure as JSON too, on stdout, with the same exit code.
  if (json()) process.stdout.write(`${JSON.stringify(errorJson(err), null, 2)}\n`);
  else process.stderr.write(`mover: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(code);
}
