// `mover survey`: the read-only estate survey from the CLI (docs/operating.md,
// "Before phase 1: the estate survey"): start it and follow it, show its totals and window estimate, list
// the orgs with a finding, or print every org as CSV.
import type { Command } from 'commander';
import { CliError, EXIT, pages, type Api } from './client.js';
import type { Out } from './progress.js';
import type { SurveyHalted, SurveyOrgsPage, SurveyStarted, SurveyView } from './replies.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const mib = (bytes: number | null) => `${((bytes ?? 0) / 1024 / 1024).toFixed(1)} MiB`;

/** The survey's totals, in lines: progress, sizes, each finding with orgs, the largest orgs, the window estimate. */
export function surveyLines(s: SurveyView): string[] {
  if (s.state === 'not_started') return ['no survey yet: mover survey start --watch'];
  const found = Object.entries(s.totals as Record<string, number>).filter(([, n]) => n > 0);
  const e = s.estimate;
  return [
    `survey ${s.run_id}: ${s.state}, ${s.orgs_surveyed}/${s.orgs_total} orgs, started ${s.started_at}${s.finished_at ? `, finished ${s.finished_at}` : ''}`,
    `  ${s.sizes.containers} containers, ${s.sizes.groups} groups, ${s.sizes.documents} documents, ${mib(s.sizes.bytes)}; copy ${s.copy_ms_mean ?? '-'} ms an org on average`,
    ...(found.length ? found.map(([f, n]) => `  ${f.padEnd(22)} ${n} orgs  (mover survey orgs --finding ${f})`) : ['  no findings']),
    ...(s.largest.length ? [`  largest: ${s.largest.map((o) => `${o.org_name} (${o.documents} docs, ${mib(o.bytes)})`).join(', ')}`] : []),
    `  estimate: ${e.inputs.orgs} orgs to migrate at concurrency ${e.concurrency}, drain wait ${e.drain_wait_ms} ms: about ${Math.round(e.seconds / 60)} min (${e.seconds} s; ${e.inputs.formula})`,
    ...(s.breaker && s.breaker.state !== 'closed' ? [`  BREAKER ${s.breaker.state.toUpperCase()}: ${s.breaker.reason}`] : []),
    ...(s.stop_reason ? [`  stopped: ${s.stop_reason}`] : []),
  ];
}

/** Follows the survey until it is no longer running; returns its last totals. */
export async function watchSurvey(api: Api, out: Out, everyMs = 1000): Promise<SurveyView> {
  let last = '';
  for (;;) {
    const s = await api.call<SurveyView>('GET', '/survey');
    const line = `surveyed ${s.orgs_surveyed}/${s.orgs_total} orgs — ${s.state}`;
    if (out.tty) out.write(`\r\x1b[2K${line}`);
    else if (line !== last) out.write(`${line}\n`);
    last = line;
    if (s.state !== 'running') {
      if (out.tty) out.write('\n');
      return s;
    }
    await sleep(everyMs);
  }
}

/** The `survey` command and its subcommands on the program. */
export function surveyCommands(
  program: Command,
  api: Api,
  io: { show(reply: unknown, lines: () => string | string[]): void; json(): boolean; int(v: string): number; out: Out },
): void {
  const survey = program
    .command('survey')
    .description('the read-only estate survey: orgs, sizes, what the migration would skip or refuse, routing anomalies, the window')
    .option('--concurrency <n>', 'the estimate at this migration concurrency')
    .option('--drain-wait <ms>', 'the estimate at this drain wait')
    .action(async (o: { concurrency?: string; drainWait?: string }) => {
      const q = [o.concurrency && `concurrency=${io.int(o.concurrency)}`, o.drainWait && `drain_wait_ms=${io.int(o.drainWait)}`].filter(Boolean).join('&');
      const r = await api.call<SurveyView>('GET', `/survey${q ? `?${q}` : ''}`);
      io.show(r, () => surveyLines(r));
    });
  survey
    .command('start')
    .description('survey every org of the account snapshot (writes nothing to CouchDB, Chef’s tables or the darklaunch Redis)')
    .option('--concurrency <n>', 'batches of orgs read at once, fleet-wide')
    .option('--watch', 'follow it until it ends, then show its totals')
    .action(async (o: { concurrency?: string; watch?: boolean }) => {
      const r = await api.call<SurveyStarted>('POST', '/survey/start', o.concurrency ? { concurrency: io.int(o.concurrency) } : {});
      io.show(r, () => `survey ${r.run_id} started: ${r.orgs} orgs; follow it: mover survey start --watch, or mover survey`);
      if (!o.watch || io.json()) return;
      const end = await watchSurvey(api, io.out);
      io.out.write(`${surveyLines(end).join('\n')}\n`);
      if (end.state === 'failed' || end.state === 'halted') throw new CliError(`the survey ${end.state}`, EXIT.error);
    });
  survey
    .command('halt')
    .description('survey no more batches; those being read finish')
    .action(async () => {
      const r = await api.call<SurveyHalted>('POST', '/survey/halt');
      io.show(r, () => `survey ${r.run_id}: ${r.state}`);
    });
  survey
    .command('orgs')
    .description('the orgs of the latest survey, by name; --finding for those with one')
    .option('--finding <name>', 'e.g. missing_database, missing_authz, preflight_refused')
    .option('--limit <n>', 'orgs a page', '100')
    .option('--cursor <org>', 'orgs after this one (the "more:" line gives it)')
    .option('--all', 'every page')
    .action(async (o: { finding?: string; limit: string; cursor?: string; all?: boolean }) => {
      const path = (cursor?: string) =>
        `/survey/orgs?limit=${io.int(o.limit)}${o.finding ? `&finding=${encodeURIComponent(o.finding)}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const { items, next, last } = await pages<SurveyOrgsPage, 'orgs'>(api, path, 'orgs', o.all === true, o.cursor);
      io.show(o.all ? { orgs: items, next_cursor: null } : last, () => [
        ...items.map((x) => `${x.org_name.padEnd(30)} ${x.findings.join(' ') || '-'}${x.refusal ? `\n    preflight: ${x.refusal}` : ''}`),
        ...(next ? [`more: mover survey orgs${o.finding ? ` --finding ${o.finding}` : ''} --cursor ${next} (or --all)`] : []),
      ]);
    });
  survey
    .command('csv')
    .description('every org of the latest survey as CSV, on stdout')
    .action(async () => {
      // Not JSON: the client hands the text back as it is.
      process.stdout.write(await api.call<string>('GET', '/survey/orgs.csv'));
    });
}
