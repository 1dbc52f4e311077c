// The estate survey on the page: its progress and findings, its CSV, the
// button that starts one, and how old it is (shown under phase 1, so nobody
// starts on a survey of last month's estate unawares).
import { act } from './api.js';
import { byId, el } from './page.js';
import type { Survey } from './replies.js';

let lastSurvey: Survey | null = null;

/** How old the estate survey is, for phase 1 (the CLI's surveyAgeLine, src/cli/progress.ts, says the same). */
export function surveyAge(): string {
  const s = lastSurvey;
  if (!s || !s.state || s.state === 'not_started') return 'estate survey: none yet (mover survey start --watch)';
  if (!s.finished_at) return `estate survey: ${s.state}, ${s.orgs_surveyed ?? 0} of ${s.orgs_total ?? '?'} orgs so far`;
  const mins = Math.round((Date.now() - Date.parse(s.finished_at)) / 60000);
  const age = mins < 60 ? `${mins} min` : mins < 2880 ? `${Math.round(mins / 60)} h` : `${Math.round(mins / 1440)} days`;
  return `estate survey: ${s.state} ${age} ago (${s.orgs_surveyed ?? 0} orgs)`;
}

/** s: null when the survey could not be read. */
export function drawSurvey(s: Survey | null) {
  lastSurvey = s;
  const box = byId('survey');
  box.replaceChildren();
  if (!s || !s.state || s.state === 'not_started') {
    box.append('No survey yet. ', el('button', { type: 'button', className: 'survey-start', textContent: 'Start the survey', onclick: startSurvey }));
    return;
  }
  const finished = s.finished_at ? ', finished ' + new Date(s.finished_at).toLocaleString() : '';
  box.append(`${s.state}: ${s.orgs_surveyed ?? 0} of ${s.orgs_total ?? '?'} orgs surveyed${finished} · `);
  box.append(el('a', { href: '/survey/orgs.csv', textContent: 'every org (CSV)' }));
  if (s.state !== 'running')
    box.append(' · ', el('button', { type: 'button', className: 'survey-start', textContent: 'Start a new survey', onclick: startSurvey }));
  const found = Object.entries(s.totals || {}).filter((e) => typeof e[1] === 'number' && e[1] > 0);
  box.append(el('div', { textContent: found.length ? 'findings: ' + found.map((e) => `${e[0]} ${e[1]}`).join(' · ') : 'findings: none' }));
  const secs = s.estimate && s.estimate.seconds;
  if (s.estimate && typeof secs === 'number') {
    const span = secs < 120 ? `${Math.round(secs)} s` : secs < 7200 ? `${Math.round(secs / 60)} min` : `${(secs / 3600).toFixed(1)} h`;
    box.append(
      el('div', { textContent: `estimated migration window at concurrency ${s.estimate.concurrency}, drain wait ${s.estimate.drain_wait_ms} ms: ${span}` }),
    );
  }
}

function startSurvey() {
  if (confirm('Start the estate survey? It reads every org of the account snapshot from CouchDB (read-only), a few batches at a time.'))
    void act('Start the survey', 'POST', '/survey/start', {});
}
