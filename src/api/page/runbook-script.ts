// The runbook page's script, run in the operator's browser: every 2 s it
// reads the phases, the current run, its minute-by-minute series, its
// failures, the settings and the survey; and it acts through the API as the
// signed-in operator (start a phase, confirm the waiting step, halt, change
// pacing), every change with the page's CSRF token, every refusal shown in
// the API's own words. Plain browser JavaScript (no backticks, no template
// expressions: it sits in a template string).
export const RUNBOOK_SCRIPT = String.raw`
const meta = (n) => document.querySelector('meta[name="' + n + '"]').content;
const T = meta('migration-type'), CSRF = meta('csrf-token'), ME = meta('operator'), NAMED = meta('operators-named') === 'true';
document.getElementById('me').textContent = ME;
const samples = [];
const el = (tag, props = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, props); for (const k of kids) e.append(k); return e; };
const field = (label, input) => el('label', {}, label, input);
const num = (name, value, min) => el('input', { type: 'number', name, value: value ?? '', min: min ?? 0 });
async function get(path) { const r = await fetch(path, { credentials: 'same-origin' }); if (r.status === 401) { location.href = '/login?next=/runbook'; throw new Error('signed out'); } return r.json(); }
async function send(method, path, body) {
  const r = await fetch(path, { method, credentials: 'same-origin', headers: { 'content-type': 'application/json', 'x-csrf-token': CSRF }, body: body === undefined ? undefined : JSON.stringify(body) });
  let b = {}; try { b = await r.json(); } catch (e) { b = { message: 'no reply body' }; }
  if (r.status === 401) location.href = '/login?next=/runbook';
  return { ok: r.ok, status: r.status, body: b };
}
function say(text, ok) { const m = document.getElementById('msg'); m.textContent = text; m.className = ok ? 'ok' : 'err'; }
async function act(what, method, path, body) {
  const r = await send(method, path, body);
  const problems = (r.body.preflight || []).map((p) => p.problem + (p.fix ? ' (fix: ' + p.fix + ')' : ''));
  if (r.ok) say(what + ': done, as ' + ME, true);
  else say(what + ' was refused (' + r.status + ' ' + (r.body.error || '') + '): ' + (r.body.message || 'no reason given') + (problems.length ? '. ' + problems.join('; ') : ''), false);
  tick().catch((e) => { document.getElementById('at').textContent = 'error: ' + e.message; });
  return r;
}
function form(submit, ...kids) { const f = el('form', { className: 'act' }, ...kids); f.addEventListener('submit', (ev) => { ev.preventDefault(); submit(new FormData(f)); }); return f; }
const intOf = (fd, name) => { const v = String(fd.get(name) ?? '').trim(); return v === '' ? undefined : Number(v); };
const PHASE_FIELDS = {
  1: () => [field('orgs (one a line)', el('textarea', { name: 'orgs' })), field('concurrency', num('concurrency', 8, 1))],
  2: () => [],
  3: () => [field('concurrency', num('concurrency', 8, 1)), field('sleep time (ms)', num('sleepTimeMs', 5000))],
  4: () => [field('type purge-couchdb-data to confirm', el('input', { name: 'confirm', size: 20 })), field('dry run', el('input', { type: 'checkbox', name: 'dryRun', checked: true }))],
};
function phaseBody(n, fd) {
  const b = {};
  if (n === 1) b.orgs = String(fd.get('orgs') || '').split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
  if (n === 1 || n === 3) { const c = intOf(fd, 'concurrency'); if (c !== undefined) b.concurrency = c; }
  if (n === 3) { const s = intOf(fd, 'sleepTimeMs'); if (s !== undefined) b.sleepTimeMs = s; }
  if (n === 4) { b.confirm = String(fd.get('confirm') || ''); b.dryRun = fd.get('dryRun') === 'on'; }
  return b;
}
function stepItem(p, s) {
  const d = s.detail || {};
  const li = el('li', {}, el('span', { className: 'state ' + s.state, textContent: s.state }), ' ' + s.id + ' ' + s.title);
  if (d.orgs_in_run !== undefined) li.append(' (' + (d.orgs_finished ?? 0) + '/' + d.orgs_in_run + ' orgs, ' + (d.orgs_failed ?? 0) + ' failed)');
  if (s.confirmed_by) li.append(el('span', { className: 'muted', textContent: ' confirmed by ' + s.confirmed_by }));
  if (s.state === 'waiting_confirmation') {
    li.append(el('span', { className: 'cmd', textContent: 'run: ' + (d.command || '(manual step)') }));
    const kids = [field('note', el('input', { name: 'note', size: 40 }))];
    if (!NAMED) kids.unshift(field('your name', el('input', { name: 'by', value: ME === 'operator' ? '' : ME, required: true })));
    kids.push(el('button', { type: 'submit', textContent: 'Confirm step ' + s.id + ' is done', className: 'confirm' }));
    li.append(form((fd) => {
      const body = {}; const note = String(fd.get('note') || ''); if (note) body.note = note; if (!NAMED) body.by = String(fd.get('by') || '');
      act('Confirm step ' + s.id, 'POST', '/phases/' + p.phase + '/steps/' + s.id + '/confirm', body);
    }, ...kids));
  }
  return li;
}
// Drawn again only when something changed, and never under an operator who is typing in one of its forms.
let phasesKey = '', typing = false;
document.getElementById('phases').addEventListener('input', () => { typing = true; });
document.getElementById('phases').addEventListener('submit', () => { typing = false; });
function drawPhases(phases, extra) {
  const key = JSON.stringify(phases) + extra;
  if (key === phasesKey || typing) return;
  phasesKey = key;
  const box = document.getElementById('phases'); box.replaceChildren();
  for (const p of phases) {
    const steps = el('ol'); for (const s of p.steps) steps.append(stepItem(p, s));
    const kids = [el('strong', { textContent: 'Phase ' + p.phase + ': ' + p.title + ' ' }), el('span', { className: 'state ' + p.state, textContent: p.state })];
    if (p.started_by) kids.push(el('span', { className: 'muted', textContent: ' started by ' + p.started_by }));
    if (p.phase === 1) kids.push(el('div', { className: 'muted survey-age', textContent: surveyAge() }));
    kids.push(steps);
    if (p.state !== 'running' && p.state !== 'waiting') {
      const label = p.state === 'failed' || p.state === 'halted' ? 'Resume phase ' + p.phase : p.state === 'completed' ? 'Run phase ' + p.phase + ' again' : 'Start phase ' + p.phase;
      kids.push(form((fd) => act(label, 'POST', '/phases/' + p.phase + '/start', phaseBody(p.phase, fd)),
        ...PHASE_FIELDS[p.phase](), el('button', { type: 'submit', textContent: label, className: 'start-' + p.phase })));
    }
    box.append(el('div', { className: 'phase' }, ...kids));
  }
}
let settingsDrawn = false;
function drawSettings(settings, status) {
  if (settingsDrawn) return; settingsDrawn = true;
  const box = document.getElementById('settings');
  box.append(form((fd) => act('Concurrency', 'PUT', '/migrations/' + T + '/concurrency', { concurrency: intOf(fd, 'concurrency') }),
    field('orgs in flight at once (concurrency)', num('concurrency', status.concurrency ?? 8, 1)), el('button', { type: 'submit', textContent: 'Set concurrency' })));
  box.append(form((fd) => act('Sleep time', 'PUT', '/settings/sleep-time', { ms: intOf(fd, 'ms') }),
    field('sleep time between org starts (ms)', num('ms', settings.sleepTimeMs)), el('button', { type: 'submit', textContent: 'Set sleep time' })));
  box.append(form((fd) => act('Drain wait', 'PUT', '/settings/drain-wait', { ms: intOf(fd, 'ms'), acknowledgeRisk: fd.get('ack') === 'on' }),
    field('drain wait after an org goes dark (ms)', num('ms', settings.drainWaitMs)),
    field('I accept the risk', el('input', { type: 'checkbox', name: 'ack' })), el('button', { type: 'submit', textContent: 'Set drain wait' }),
    el('div', { className: 'risk', textContent: 'Risk: below 5000 ms (the runbook\'s sleep_time), a write the Chef API accepted just before the org went dark may land after mover copied the org, and it is lost at the switch. Check it only if you know how long your Chef API takes to finish a write.' })));
}
const charts = {};
function chart(id, title, series) {
  const box = document.getElementById(id);
  const opts = { title, width: Math.max(300, box.clientWidth || 480), height: 170, scales: { x: { time: true } },
    series: [{}].concat(series.map((s) => ({ label: s[0], stroke: s[1], width: 2, points: { show: true, size: 5 } }))) };
  charts[id] = new uPlot(opts, [[]].concat(series.map(() => [])), box);
  window.__charts = charts;
}
function drawSeries(minutes) {
  if (typeof uPlot === 'undefined') return;
  if (!charts['chart-rate']) { chart('chart-rate', 'orgs per second, orgs dark (per minute)', [['orgs/s', '#4a8af4'], ['orgs dark (most at once)', '#d33']]); chart('chart-dark', 'dark time p99 (s)', [['p99 (s)', '#8a4af4']]); }
  const xs = minutes.map((m) => Date.parse(m.minute) / 1000);
  charts['chart-rate'].setData([xs, minutes.map((m) => m.orgs_per_s), minutes.map((m) => m.dark_max)]);
  charts['chart-dark'].setData([xs, minutes.map((m) => (m.dark_p99_ms === null ? null : m.dark_p99_ms / 1000))]);
  // At least ten minutes wide: a run's first minute is one point, not a span of years.
  const now = Date.now() / 1000, max = xs.length ? Math.max(xs[xs.length - 1] + 60, now) : now;
  const min = Math.min(xs.length ? xs[0] - 60 : now, max - 600);
  for (const id of ['chart-rate', 'chart-dark']) charts[id].setScale('x', { min, max });
}
function drawFailures(byStep) {
  const box = document.getElementById('failures'); box.replaceChildren();
  const entries = Object.entries(byStep); const most = Math.max(1, ...entries.map((e) => e[1]));
  if (!entries.length) box.append('none in the latest run');
  for (const [step, n] of entries) box.append(el('div', { className: 'fbar' }, el('span', { textContent: step + ' ' + n }), el('div', { style: 'width:' + Math.round((200 * n) / most) + 'px' })));
}
let lastSurvey = null;
/** What phase 1 shows of the survey: how old it is, so nobody starts on a survey of last month's estate unawares. */
function surveyAge() {
  const s = lastSurvey;
  if (!s || !s.state || s.state === 'not_started') return 'estate survey: none yet (mover survey start --watch)';
  if (!s.finished_at) return 'estate survey: ' + s.state + ', ' + (s.orgs_surveyed ?? 0) + ' of ' + (s.orgs_total ?? '?') + ' orgs so far';
  const mins = Math.round((Date.now() - Date.parse(s.finished_at)) / 60000);
  const age = mins < 60 ? mins + ' min' : mins < 2880 ? Math.round(mins / 60) + ' h' : Math.round(mins / 1440) + ' days';
  return 'estate survey: ' + s.state + ' ' + age + ' ago (' + (s.orgs_surveyed ?? 0) + ' orgs)';
}
function drawSurvey(s) {
  lastSurvey = s;
  const box = document.getElementById('survey'); box.replaceChildren();
  if (!s || !s.state || s.state === 'not_started') { box.append('No survey yet: mover survey start --watch'); return; }
  box.append(s.state + ': ' + (s.orgs_surveyed ?? 0) + ' of ' + (s.orgs_total ?? '?') + ' orgs surveyed' + (s.finished_at ? ', finished ' + new Date(s.finished_at).toLocaleString() : '') + ' · ');
  box.append(el('a', { href: '/survey/orgs.csv', textContent: 'every org (CSV)' }));
  const found = Object.entries(s.totals || {}).filter((e) => typeof e[1] === 'number' && e[1] > 0);
  box.append(el('div', { textContent: found.length ? 'findings: ' + found.map((e) => e[0] + ' ' + e[1]).join(' · ') : 'findings: none' }));
  const secs = s.estimate && s.estimate.seconds;
  if (typeof secs === 'number') box.append(el('div', { textContent: 'estimated migration window at concurrency ' + s.estimate.concurrency + ', drain wait ' + s.estimate.drain_wait_ms + ' ms: ' +
    (secs < 120 ? Math.round(secs) + ' s' : secs < 7200 ? Math.round(secs / 60) + ' min' : (secs / 3600).toFixed(1) + ' h') }));
}
async function tick() {
  const [phases, status, failures, series, settings, survey] = await Promise.all([get('/phases'), get('/migrations/' + T + '/status'), get('/migrations/' + T + '/failures'),
    get('/migrations/' + T + '/series'), get('/settings'), get('/survey').catch((e) => { console.warn('no survey to show:', e.message); return null; })]);
  const total = status.orgs_completed + status.objects_in_progress + (typeof status.objects_remaining === 'number' ? status.objects_remaining : 0);
  document.getElementById('runstate').textContent = status.runId ? 'run ' + status.runId + ': ' + status.state : 'no run yet';
  document.getElementById('halt').hidden = status.state !== 'working';
  document.getElementById('progress').style.width = (total ? (100 * status.orgs_completed) / total : 0) + '%';
  document.getElementById('runline').textContent = status.orgs_completed + ' of ' + total + ' orgs finished, ' + status.objects_in_progress + ' in flight, concurrency ' + (status.concurrency ?? '–');
  samples.push({ at: Date.now(), done: status.orgs_completed }); while (samples.length && Date.now() - samples[0].at > 300000) samples.shift();
  const first = samples[0], last = samples[samples.length - 1];
  document.getElementById('orgsps').textContent = last.at > first.at ? ((last.done - first.done) / ((last.at - first.at) / 1000)).toFixed(1) : '–';
  document.getElementById('dark').textContent = status.orgs_dark ?? '?';
  const dt = status.dark, secs = (ms) => (ms === null || ms === undefined ? '–' : (ms / 1000).toFixed(1) + ' s');
  const darkTile = document.getElementById('darktime');
  darkTile.textContent = dt && dt.orgs ? secs(dt.p50_ms) + ' / ' + secs(dt.p99_ms) + ' / ' + secs(dt.max_ms) + (dt.saturated ? ' (saturated)' : '') : '–';
  darkTile.className = dt && dt.saturated ? 'saturated' : '';
  document.getElementById('failed').textContent = status.objects_failed;
  document.getElementById('breaker').textContent = status.breaker ? status.breaker.state + (status.breaker.reason && status.breaker.state !== 'closed' ? ': ' + status.breaker.reason : '') : '–';
  drawFailures(failures.by_step); drawSeries(series.minutes); drawSettings(settings, status); drawSurvey(survey); drawPhases(phases.phases, surveyAge());
  document.getElementById('at').textContent = new Date().toLocaleTimeString();
}
document.getElementById('halt').addEventListener('click', () => { if (confirm('Halt the running ' + T + ' run? Orgs in flight finish; no new org starts.')) act('Halt', 'POST', '/migrations/' + T + '/halt'); });
async function loop() { try { await tick(); } catch (e) { document.getElementById('at').textContent = 'error: ' + e.message; } setTimeout(loop, 2000); }
loop();
`;
