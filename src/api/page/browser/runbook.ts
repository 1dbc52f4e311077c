// The runbook page's script, run in the operator's browser (loaded by
// src/api/page/runbook-html.ts; compiled and served as described in
// src/api/page/runbook-scripts.ts): every 2 s it reads the phases, the
// current run, its minute-by-minute series, its failures, the settings and
// the survey; and it acts through the API as the signed-in operator (start a
// phase, confirm the waiting step, halt, change pacing), every change with
// the page's CSRF token, every refusal shown in the API's own words.
import { act, afterEachAction, get } from './api.js';
import { drawSeries } from './charts.js';
import { drawFailures, redrawFailures } from './failures.js';
import { byId, el, ME, T } from './page.js';
import { drawPhases } from './phases.js';
import type { Failures, Phases, RunList, RunStatus, Series, Settings, Survey } from './replies.js';
import { orgsInRun, recentRate, runOver, runRate, type RateSample } from './run-rate.js';
import { drawSettings } from './settings.js';
import { drawSurvey, surveyAge } from './survey.js';

byId('me').textContent = ME;

// The chosen run ('' for the latest): status, failures and charts all read it.
let chosenRun = '';
const runQuery = () => (chosenRun ? '?run_id=' + chosenRun : '');

function drawRuns(list: RunList) {
  const sel = byId<HTMLSelectElement>('run-choice');
  const key = JSON.stringify(list.runs.map((r) => [r.run_id, r.state]));
  if (sel.dataset.key === key) return;
  sel.dataset.key = key;
  sel.replaceChildren(el('option', { value: '', textContent: 'latest run' }));
  for (const r of list.runs)
    sel.append(
      el('option', {
        value: r.run_id,
        textContent: `run ${r.run_id} (${r.state}, ${r.orgs_finished}/${r.orgs_in_run} orgs, ${new Date(r.started_at).toLocaleString()})`,
      }),
    );
  sel.value = chosenRun;
}

const samples: RateSample[] = [];
/** Orgs/s: over the last minute of this page's samples (once they span 5 s) while the run works; over the whole run before that and once it is over. */
function orgsPerSecond(status: RunStatus): string {
  const recent = recentRate(samples, { at: Date.now(), done: status.orgs_completed, run: status.run_id }, 5000);
  const rate = !runOver(status) && recent !== null ? recent : runRate(status);
  return rate === null ? '–' : rate.toFixed(1);
}

const secs = (ms: number | null | undefined) => (ms === null || ms === undefined ? '–' : (ms / 1000).toFixed(1) + ' s');

async function tick() {
  const [phases, status, failures, series, settings, survey, runs] = await Promise.all([
    get<Phases>('/phases'),
    get<RunStatus>(`/migrations/${T}/status${runQuery()}`),
    get<Failures>(`/migrations/${T}/failures${runQuery()}`),
    get<Series>(`/migrations/${T}/series${runQuery()}`),
    get<Settings>('/settings'),
    get<Survey>('/survey').catch((e: Error) => {
      console.warn('no survey to show:', e.message);
      return null;
    }),
    get<RunList>(`/migrations/${T}/runs?limit=50`),
  ]);
  const total = orgsInRun(status);
  const rs = byId('runstate');
  rs.textContent = status.run_id ? `run ${status.run_id}: ${status.state}` : 'no run yet';
  rs.className = 'state ' + status.state;
  byId('stop-reason').textContent = status.stop_reason ? (status.state === 'completed' ? 'ended: ' : 'stopped: ') + status.stop_reason : '';
  byId('halt').hidden = status.state !== 'working';
  byId('progress').style.width = `${total ? (100 * status.orgs_completed) / total : 0}%`;
  byId('runline').textContent =
    `${status.orgs_completed} of ${total} orgs finished, ${status.objects_in_progress} in flight, concurrency ${status.concurrency ?? '–'}`;
  byId('orgsps').textContent = orgsPerSecond(status);
  drawRuns(runs);
  byId('dark').textContent = String(status.orgs_dark ?? '?');
  const dt = status.dark;
  const darkTile = byId('darktime');
  darkTile.textContent = dt && dt.orgs ? `${secs(dt.p50_ms)} / ${secs(dt.p99_ms)} / ${secs(dt.max_ms)}` : '–';
  darkTile.className = dt && dt.saturated ? 'saturated' : '';
  byId('saturation').textContent = dt && dt.saturation ? 'Saturated: ' + dt.saturation : '';
  byId('failed').textContent = String(status.objects_failed);
  const breaker = status.breaker;
  byId('breaker').textContent = breaker ? breaker.state + (breaker.reason && breaker.state !== 'closed' ? ': ' + breaker.reason : '') : '–';
  byId('guard').textContent = guardLine(status.guard);
  drawFailures(failures);
  drawSeries(series);
  drawSettings(settings, status);
  drawSurvey(survey);
  drawPhases(phases.phases, surveyAge(), settings, status);
  byId('at').textContent = new Date().toLocaleTimeString();
}

/** The live-service guard: its budget, its figure, the concurrency it lets the run have and why; CouchDB's open-database warning; empty with neither. */
function guardLine(g: RunStatus['guard']): string {
  const openDbs = g?.couchdb_open_dbs ? `CouchDB open databases: ${g.couchdb_open_dbs}` : '';
  if (!g || g.budget_p99_ms === null) return openDbs;
  const measured = g.measured_p99_ms === null ? 'no figure yet' : `p99 ${Math.round(g.measured_p99_ms)} ms (${g.source ?? '?'})`;
  const held =
    g.effective_concurrency < g.set_concurrency ? `, held at ${g.effective_concurrency} of ${g.set_concurrency}` : `, concurrency ${g.set_concurrency}`;
  return `CouchDB guard: budget p99 ${g.budget_p99_ms} ms, measured ${measured}${held}${g.reason ? ': ' + g.reason : ''}${openDbs ? `. ${openDbs}` : ''}`;
}

/** A read that failed is shown where the time of the last one is. */
const showError = (e: unknown) => {
  byId('at').textContent = 'error: ' + (e as Error).message;
};
const refresh = () => {
  tick().catch(showError);
};
afterEachAction(refresh);

byId('run-choice').addEventListener('change', (ev) => {
  chosenRun = (ev.target as HTMLSelectElement).value;
  redrawFailures();
  refresh();
});
byId('halt').addEventListener('click', () => {
  if (confirm(`Halt the running ${T} run? Orgs in flight finish; no new org starts.`)) void act('Halt', 'POST', `/migrations/${T}/halt`);
});

async function loop() {
  try {
    await tick();
  } catch (e) {
    showError(e);
  }
  setTimeout(() => void loop(), 2000);
}
void loop();
