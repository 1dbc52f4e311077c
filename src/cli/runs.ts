// `mover run` and `mover revert`: runs of a migration type from the CLI
// (docs/operating.md, "The mover CLI"): start, follow, halt and re-size them; list the
// runs; page through a run's failed orgs; retry the ones an operator chose.
import type { Command } from 'commander';
import { CliError, EXIT, pages, query, type Api } from './client.js';
import { runLine, watchRun, type Out } from './progress.js';
import { PHASE_2_MIGRATION, PHASE_2_REVERT } from '../queue-names.js';
import type { RunFailures, RunHalted, RunList, RunResized, RunStarted, RunStatus } from './replies.js';

const T = PHASE_2_MIGRATION;

interface Io {
  show(reply: unknown, lines: () => string | string[]): void;
  json(): boolean;
  int(v: string): number;
  out: Out;
  orgNames(args: string[], file?: string): string[];
}

export function runCommands(program: Command, api: Api, io: Io): void {
  const run = program.command('run').description('runs of a migration type (legacy mover_manager)');
  run
    .command('start [type]')
    .option('--count <n>', 'how many ready orgs, or all', 'all')
    .option('--concurrency <n>', 'orgs in flight at once, fleet-wide', '8')
    .option('--watch', 'follow it until it ends')
    .action(async (type = T, o: { count: string; concurrency: string; watch?: boolean }) => {
      const count = o.count === 'all' ? 'all' : io.int(o.count);
      const r = await api.call<RunStarted>('POST', `/migrations/${type}/start`, { count, concurrency: io.int(o.concurrency) });
      io.show(r, () => `run ${r.run_id} started: ${r.orgs} orgs`);
      if (o.watch && !io.json()) await watchRun(api, type, io.out, 1000, r.run_id);
    });
  run
    .command('status [type]')
    .option('--run <id>', 'a run before the latest (mover run list)')
    .option('--watch', 'follow it live until it ends')
    .action(async (type = T, o: { run?: string; watch?: boolean }) => {
      if (o.watch && !io.json()) return void (await watchRun(api, type, io.out, 1000, o.run));
      const r = await api.call<RunStatus>('GET', `/migrations/${type}/status${query({ run_id: o.run })}`);
      io.show(r, () => [
        `run ${r.run_id ?? '-'}: ${runLine(r, null, false)}`,
        ...(r.stop_reason ? [`  ${r.state === 'completed' ? 'ended' : 'stopped'}: ${r.stop_reason}`] : []),
      ]);
    });
  run
    .command('list [type]')
    .description('the runs of a type, newest first')
    .option('--limit <n>', 'runs a page', '20')
    .option('--cursor <run>', 'runs older than this one')
    .option('--all', 'every run')
    .action(async (type = T, o: { limit: string; cursor?: string; all?: boolean }) => {
      const { items, next, last } = await pages<RunList, 'runs'>(
        api,
        (c) => `/migrations/${type}/runs${query({ limit: io.int(o.limit), cursor: c })}`,
        'runs',
        o.all === true,
        o.cursor,
      );
      io.show(o.all ? { runs: items, next_cursor: null } : last, () => [
        ...items.map(
          (r) =>
            `run ${r.run_id}  ${r.state.padEnd(9)} ${r.orgs_finished}/${r.orgs_in_run} orgs, ${r.orgs_failed} failed  ${r.started_at} → ${r.finished_at ?? 'now'}${r.stop_reason && r.state !== 'completed' ? `  (${r.stop_reason})` : ''}`,
        ),
        ...(items.length ? [] : ['no runs yet']),
        ...(next ? [`more: mover run list ${type} --cursor ${next} (or --all)`] : []),
      ]);
    });
  run
    .command('failures [type]')
    .description("a run's failed orgs: counts by step, then each org with its step, why and when")
    .option('--run <id>', 'a run before the latest (mover run list)')
    .option('--limit <n>', 'orgs a page', '100')
    .option('--cursor <org>', 'orgs after this one')
    .option('--all', 'every failed org')
    .action(async (type = T, o: { run?: string; limit: string; cursor?: string; all?: boolean }) => {
      const path = (c?: string) => `/migrations/${type}/failures${query({ run_id: o.run, limit: io.int(o.limit), cursor: c })}`;
      const { items, next, last } = await pages<RunFailures, 'orgs'>(api, path, 'orgs', o.all === true, o.cursor);
      io.show(o.all ? { ...last, orgs: items, next_cursor: null } : last, () => [
        `run ${last.run_id ?? '-'}: ${
          Object.entries(last.by_step)
            .map(([s, n]) => `${s} ${n}`)
            .join(', ') || 'no failed orgs'
        }`,
        ...items.map((f) => `  ${f.org_name}  at ${f.step ?? '?'} (${f.kind}) ${f.failed_at}: ${f.reason ?? ''}`),
        ...(next ? [`more: mover run failures ${type}${o.run ? ` --run ${o.run}` : ''} --cursor ${next} (or --all)`] : []),
        ...(items.length ? [`retry some: mover run retry ${type === T ? '' : `${type} `}<org...> (or --file, or --failed to retry every one)`] : []),
      ]);
    });
  run
    .command('retry [names...]')
    .description('retry failed orgs: reset them to ready (their partial SQL rows deleted) and start a run of only them')
    .option('--type <type>', 'migration type', T)
    .option('--file <file>', 'org names, one a line')
    .option('--failed', "every failed org of the latest run (or of --run's)")
    .option('--run <id>', 'with --failed: that run')
    .option('--concurrency <n>', 'orgs in flight at once', '8')
    .action(async (names: string[], o: { type: string; file?: string; failed?: boolean; run?: string; concurrency: string }) => {
      let orgs: string[];
      if (o.failed) {
        const path = (c?: string) => `/migrations/${o.type}/failures${query({ run_id: o.run, limit: 1000, cursor: c })}`;
        orgs = (await pages<RunFailures, 'orgs'>(api, path, 'orgs', true)).items.map((f) => f.org_name);
        if (!orgs.length) throw new CliError('no failed org to retry in that run', EXIT.conflict);
      } else orgs = io.orgNames(names, o.file);
      const r = await api.call<RunStarted>('POST', `/migrations/${o.type}/retry`, { orgs, concurrency: io.int(o.concurrency) });
      io.show(r, () => [`retry run ${r.run_id}: ${r.orgs} orgs`, ...(r.skipped ?? []).map((s) => `  skipped (not failed): ${s}`)]);
    });
  run
    .command('halt [type]')
    .description('start no more orgs anywhere; running ones finish')
    .action(async (type = T) => {
      const r = await api.call<RunHalted>('POST', `/migrations/${type}/halt`);
      io.show(r, () => `run ${r.run_id}: ${r.state}`);
    });
  run
    .command('concurrency <n> [type]')
    .description('orgs in flight at once, fleet-wide, now')
    .action(async (n: string, type = T) => {
      const r = await api.call<RunResized>('PUT', `/migrations/${type}/concurrency`, { concurrency: io.int(n) });
      io.show(r, () => `concurrency ${r.concurrency}`);
    });

  program
    .command('revert [names...]')
    .description('send completed orgs back to CouchDB (refused if they changed on SQL, unless --write-back)')
    .option('--all', 'every completed org')
    .option('--count <n>', 'this many completed orgs, by org_id')
    .option('--file <file>', 'org names, one a line')
    .option('--write-back', 'write what changed on SQL back to CouchDB first')
    .option('--concurrency <n>', 'orgs at once', '8')
    .action(async (names: string[], o: { all?: boolean; count?: string; file?: string; writeBack?: boolean; concurrency: string }) => {
      const which = o.all ? { count: 'all' } : o.count ? { count: io.int(o.count) } : { orgs: io.orgNames(names, o.file) };
      const r = await api.call<RunStarted>('POST', `/migrations/${PHASE_2_REVERT}/start`, {
        ...which,
        concurrency: io.int(o.concurrency),
        write_back: o.writeBack === true,
      });
      io.show(r, () => [`revert run ${r.run_id}: ${r.orgs} orgs`, ...(r.skipped ?? []).map((s) => `  skipped (not completed): ${s}`)]);
    });
}
