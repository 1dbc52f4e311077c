// Live progress for work that takes time: a run's bar (orgs finished of the
// run's total, orgs/s, ETA, failed, dark now, the breaker), a phase's steps
// with the waiting manual step's command, the account refresh. On a TTY one
// line is redrawn; otherwise (a pipe, a log) plain lines, one per change.
import type { Api } from './client.js';
import type { AccountView, PhaseView, RunStatus, SurveyView } from './replies.js';
// The rules the runbook page shows the same numbers by.
import { orgsInRun, recentRate, runOver, runRate, type RateSample } from '../api/page/browser/run-rate.js';

export interface Out {
  tty: boolean;
  write(s: string): void;
}

export const stdout: Out = { tty: Boolean(process.stdout.isTTY), write: (s) => process.stdout.write(s) };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function duration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/** Records this sample of orgs finished and returns orgs/s over the last minute of samples (null until two of them span any time). */
const rateOf = (seen: RateSample[], done: number) => recentRate(seen, { at: Date.now(), done }, 1);

/** The live-service guard, when it holds the run below its concurrency (or has no figure): what, and why. */
function guardText(g: RunStatus['guard']): string {
  const openDbs = g?.couchdb_open_dbs ? `  COUCHDB OPEN DATABASES: ${g.couchdb_open_dbs}` : '';
  if (!g || g.budget_p99_ms === null || g.reason === null) return openDbs;
  const measured = g.measured_p99_ms === null ? 'no figure' : `p99 ${Math.round(g.measured_p99_ms)} ms`;
  return `  GUARD ${g.effective_concurrency}/${g.set_concurrency} (CouchDB ${measured}, budget ${g.budget_p99_ms} ms): ${g.reason}${openDbs}`;
}

/** One line about a run from its status: the bar, rate, ETA, failures, dark orgs, breaker, the guard. */
export function runLine(status: RunStatus, sampled: number | null, tty: boolean): string {
  const total = orgsInRun(status);
  const done = status.orgs_completed;
  const over = runOver(status);
  // Live: the rate over the last minute of samples; before two samples, and once over, the run's own average.
  const rate = !over && sampled !== null ? sampled : runRate(status);
  const width = 24;
  const filled = total ? Math.round((done / total) * width) : 0;
  const bar = tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
  const eta = over ? 'done' : rate && rate > 0 ? duration((total - done) / rate) : '?';
  const breaker = status.breaker && status.breaker.state !== 'closed' ? `  BREAKER ${status.breaker.state.toUpperCase()}: ${status.breaker.reason}` : '';
  return `${bar}${done}/${total} orgs  ${rate === null ? '-' : rate.toFixed(1)} orgs/s  ETA ${eta}  failed ${status.objects_failed}  dark ${status.orgs_dark ?? '?'}${darkTimes(status.dark)}  ${status.state}${breaker}${guardText(status.guard)}`;
}

/** The run's dark times, p50/p99/max, and SATURATED with its reason when orgs stay dark well past the drain wait (src/runs/dark-time.ts). */
function darkTimes(d: { orgs: number; p50_ms: number | null; p99_ms: number | null; max_ms: number | null; saturation?: string | null } | undefined): string {
  if (!d?.orgs) return '';
  const s = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);
  return ` (dark time p50 ${s(d.p50_ms)} p99 ${s(d.p99_ms)} max ${s(d.max_ms)})${d.saturation ? `  SATURATED: ${d.saturation}` : ''}`;
}

/** Follows a run until it ends; returns its last status. */
export async function watchRun(api: Api, type: string, out: Out, everyMs = 1000, runId?: string): Promise<RunStatus> {
  const seen: RateSample[] = [];
  let last = '';
  for (;;) {
    // A run named by id is followed itself; else the latest.
    const status = await api.call<RunStatus>('GET', `/migrations/${type}/status${runId ? `?run_id=${encodeURIComponent(runId)}` : ''}`);
    const rate = rateOf(seen, status.orgs_completed);
    const line = runLine(status, rate, out.tty);
    if (out.tty) out.write(`\r\x1b[2K${line}`);
    else if (line.replace(/ [\d.]+ orgs\/s.*?failed/, ' failed') !== last.replace(/ [\d.]+ orgs\/s.*?failed/, ' failed')) out.write(`${line}\n`);
    last = line;
    if (runOver(status)) {
      if (out.tty) out.write('\n');
      return status;
    }
    await sleep(everyMs);
  }
}

/** What a step's detail may say, as these lines read it (src/phases: a step's report; the schema leaves it open). */
interface StepDetail {
  orgs_in_run?: number;
  orgs_finished?: number;
  orgs_failed?: number;
  note?: string;
  error?: string;
  command?: string;
  breaker?: { state: string; reason: string | null };
  migration_type?: string;
  run_id?: string;
}
const detailOf = (step: PhaseView['steps'][number]) => step.detail as StepDetail | undefined;

const MARK: Record<string, string> = { done: 'x', skipped: '-', running: '>', waiting_confirmation: '?', failed: '!', pending: ' ' };

/**
 * A phase's steps, one a line, with who confirmed each manual step and what a
 * waiting one asks of the operator. `live`: the running step's run status, so
 * its counts are the run's now (the step's detail is as of the driver's last tick).
 */
export function phaseLines(phase: PhaseView, live?: RunStatus | null): string[] {
  const lines = [`phase ${phase.phase}: ${phase.title} — ${phase.state}`];
  for (const step of phase.steps) {
    const s = { ...step, detail: detailOf(step) };
    const d =
      s.state === 'running' && live
        ? {
            orgs_in_run: orgsInRun(live),
            orgs_finished: live.orgs_completed,
            orgs_failed: live.objects_failed,
          }
        : s.detail;
    const progress = d?.orgs_in_run !== undefined ? ` (${d.orgs_finished ?? 0}/${d.orgs_in_run} orgs, ${d.orgs_failed ?? 0} failed)` : '';
    const confirmed = s.confirmed_by ? ` — confirmed by ${s.confirmed_by}${s.confirmed_at ? ` at ${s.confirmed_at}` : ''}` : '';
    // A step with nothing to do says so (a run of no orgs is not made).
    const note = s.detail?.note ? ` — ${s.detail.note}` : '';
    lines.push(
      `  [${MARK[s.state] ?? ' '}] ${s.id.padEnd(4)} ${s.title}${progress}${confirmed}${note}${s.state === 'failed' && s.detail?.error ? `: ${s.detail.error}` : ''}`,
    );
    if (s.state === 'waiting_confirmation') {
      lines.push(`        waiting for you: ${s.detail?.command ?? '(a manual step)'}`);
      // With named operators the confirmation is in the signed-in operator's name (another --by is a 403); with the one shared token, --by names who did it.
      lines.push(`        then: mover phase confirm ${phase.phase} ${s.id} [--note "..."]   (with the one shared MOVER_API_TOKEN, add --by <your name>)`);
    }
    if (s.detail?.breaker) lines.push(`        breaker ${s.detail.breaker.state}: ${s.detail.breaker.reason}`);
  }
  return lines;
}

/** Follows a phase until it completes, fails, halts or waits for a confirmation; returns its last view. */
/** How old the estate survey is, for phase 1: nobody should start on a survey of last month's estate unawares. */
export function surveyAgeLine(s: SurveyView | null | undefined, now = Date.now()): string {
  if (!s?.state || s.state === 'not_started') return '  estate survey: none yet (mover survey start --watch)';
  if (!s.finished_at) return `  estate survey: ${s.state}, ${s.orgs_surveyed ?? 0} of ${s.orgs_total ?? '?'} orgs so far`;
  const mins = Math.round((now - Date.parse(s.finished_at)) / 60_000);
  const age = mins < 60 ? `${mins} min` : mins < 2880 ? `${Math.round(mins / 60)} h` : `${Math.round(mins / 1440)} days`;
  return `  estate survey: ${s.state} ${age} ago (${s.orgs_surveyed ?? 0} orgs; mover survey)`;
}

export async function watchPhase(api: Api, n: number, out: Out, opts: { untilDone?: boolean; everyMs?: number } = {}): Promise<PhaseView> {
  let last = '';
  let drawn = 0;
  let printed = new Set<string>();
  const seen: RateSample[] = [];
  const survey = n === 1 ? surveyAgeLine(await api.call<SurveyView>('GET', '/survey')) : null;
  for (;;) {
    const phase = await api.call<PhaseView>('GET', `/phases/${n}`);
    // A step running a migration: its run's bar, rate, ETA, failures and dark orgs under the steps, and its counts in the step's line.
    const step = phase.steps.find((s) => s.state === 'running' && detailOf(s)?.migration_type);
    const running = step && detailOf(step);
    const status = running ? await api.call<RunStatus>('GET', `/migrations/${running.migration_type}/status?run_id=${running.run_id}`) : null;
    const lines = phaseLines(phase, status);
    if (survey) lines.splice(1, 0, survey);
    if (status) lines.push(`  ${runLine(status, rateOf(seen, status.orgs_completed), out.tty)}`);
    if (out.tty) {
      // On a TTY the block is redrawn in place.
      const text = lines.join('\n');
      if (text !== last) {
        if (drawn) out.write(`\x1b[${drawn}A\x1b[0J`);
        out.write(`${text}\n`);
        drawn = lines.length;
        last = text;
      }
    } else {
      // Elsewhere (a pipe, a log) only the lines that changed, each once; rate and ETA alone are no change.
      const plain = lines.map((l) => l.replace(/ {2}[\d.-]+ orgs\/s {2}ETA \S+/, ''));
      for (const l of plain) if (!printed.has(l)) out.write(`${l}\n`);
      printed = new Set(plain);
    }
    const ended = ['completed', 'failed', 'halted', 'not_started'].includes(phase.state);
    if (ended || (phase.state === 'waiting' && !opts.untilDone)) return phase;
    await sleep(opts.everyMs ?? 1000);
  }
}

/** Follows the account refresh until the snapshot is no longer refreshing. */
export async function watchAccount(api: Api, out: Out, everyMs = 500): Promise<AccountView> {
  for (let i = 0; ; i++) {
    const account = await api.call<AccountView>('GET', '/account');
    if (account.state !== 'refreshing') return account;
    if (out.tty) out.write(`\r\x1b[2Krefreshing the account snapshot ${'|/-\\'[i % 4]}`);
    else if (i === 0) out.write('refreshing the account snapshot\n');
    await sleep(everyMs);
  }
}
