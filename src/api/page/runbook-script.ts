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
// Each form shows the settings as they are now: the sleep time field is empty (the current one stands) unless the operator types one.
const PHASE_FIELDS = {
  1: () => [field('orgs (one a line)', el('textarea', { name: 'orgs' })), field('concurrency', num('concurrency', 8, 1))],
  2: () => [],
  3: (settings) => [field('concurrency', num('concurrency', 8, 1)),
    field('sleep time (ms)', el('input', { type: 'number', name: 'sleep_time_ms', min: 0, value: '', placeholder: 'now ' + (settings ? settings.sleep_time_ms : '?') + ' (unchanged if empty)' }))],
  4: () => [field('type purge-couchdb-data to confirm', el('input', { name: 'confirm', size: 20 })), field('dry run', el('input', { type: 'checkbox', name: 'dry_run', checked: true }))],
};
function phaseBody(n, fd) {
  const b = {};
  if (n === 1) b.orgs = String(fd.get('orgs') || '').split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
  if (n === 1 || n === 3) { const c = intOf(fd, 'concurrency'); if (c !== undefined) b.concurrency = c; }
  if (n === 3) { const s = intOf(fd, 'sleep_time_ms'); if (s !== undefined) b.sleep_time_ms = s; }
  if (n === 4) { b.confirm = String(fd.get('confirm') || ''); b.dry_run = fd.get('dry_run') === 'on'; }
  if (fd.get('again') === 'on') b.again = true;
  return b;
}
// The run shown above (latest, or chosen): a running step of the same run takes its counts from it, so the two never disagree.
let liveStatus = null;
function stepItem(p, s) {
  const st = liveStatus, own = s.detail || {};
  const d = s.state === 'running' && st && own.run_id && String(own.run_id) === String(st.run_id)
    ? { ...own, orgs_in_run: st.orgs_completed + st.objects_in_progress + (typeof st.objects_remaining === 'number' ? st.objects_remaining : 0), orgs_finished: st.orgs_completed, orgs_failed: st.objects_failed }
    : own;
  const li = el('li', {}, el('span', { className: 'state ' + s.state, textContent: s.state }), ' ' + s.id + ' ' + s.title);
  if (d.orgs_in_run !== undefined) li.append(' (' + (d.orgs_finished ?? 0) + '/' + d.orgs_in_run + ' orgs, ' + (d.orgs_failed ?? 0) + ' failed)');
  if (d.note) li.append(el('span', { className: 'muted', textContent: ' — ' + d.note }));
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
function drawPhases(phases, extra, settings) {
  const key = JSON.stringify(phases) + extra + JSON.stringify(settings) + (liveStatus ? liveStatus.orgs_completed + '/' + liveStatus.objects_failed : '');
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
      // A completed phase runs again only when the operator ticks "again": without it the api refuses and says what it would do.
      const again = p.state === 'completed' ? [field('again: I know it runs every step of the phase once more', el('input', { type: 'checkbox', name: 'again', className: 'again-' + p.phase }))] : [];
      kids.push(form((fd) => act(label, 'POST', '/phases/' + p.phase + '/start', phaseBody(p.phase, fd)),
        ...PHASE_FIELDS[p.phase](settings), ...again, el('button', { type: 'submit', textContent: label, className: 'start-' + p.phase })));
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
    field('sleep time between org starts (ms)', num('ms', settings.sleep_time_ms)), el('button', { type: 'submit', textContent: 'Set sleep time' })));
  box.append(form((fd) => act('Drain wait', 'PUT', '/settings/drain-wait', { ms: intOf(fd, 'ms'), acknowledge_risk: fd.get('ack') === 'on' }),
    field('drain wait after an org goes dark (ms)', num('ms', settings.drain_wait_ms)),
    field('I accept the risk', el('input', { type: 'checkbox', name: 'ack' })), el('button', { type: 'submit', textContent: 'Set drain wait' }),
    el('div', { className: 'risk', textContent: 'Risk: below 5000 ms (the runbook\'s sleep_time), a write the Chef API accepted just before the org went dark may land after mover copied the org, and it is lost at the switch. Check it only if you know how long your Chef API takes to finish a write.' })));
}
// One chart a series, each with its own y axis; x runs from the run's start to its end (or now), at the resolution the api chose for its length.
const charts = {};
const CHARTS = [['chart-rate', 'orgs finished per second', 'orgs/s', '#4a8af4', (p) => p.orgs_per_s],
  ['chart-dark', 'orgs dark at once (most in each interval)', 'orgs dark', '#d33', (p) => p.dark_max],
  ['chart-p99', 'dark time p99 so far (s)', 'p99 (s)', '#8a4af4', (p) => (p.dark_p99_ms === null ? null : p.dark_p99_ms / 1000)]];
const chartWidth = (box) => Math.max(240, Math.min(box.clientWidth || 480, 1200));
function drawSeries(series) {
  if (typeof uPlot === 'undefined') return;
  for (const [id, title, label, stroke] of CHARTS) if (!charts[id]) {
    const box = document.getElementById(id);
    charts[id] = new uPlot({ title, width: chartWidth(box), height: 160, scales: { x: { time: true } },
      series: [{}, { label, stroke, width: 2, points: { show: true, size: 4 } }] }, [[], []], box);
  }
  window.__charts = charts;
  const pts = series.points || [];
  const xs = pts.map((p) => Date.parse(p.at) / 1000);
  for (const [id, , , , pick] of CHARTS) charts[id].setData([xs, pts.map(pick)]);
  document.getElementById('resolution').textContent = series.run_id ? 'one point every ' + (series.bucket_s < 60 ? series.bucket_s + ' s' : Math.round(series.bucket_s / 60) + ' min') : '';
  if (!series.started_at) return;
  // A point stands for its bucket, which may start before the run did: the axis takes in the first bucket and the last.
  const min = Math.min(Date.parse(series.started_at) / 1000, xs.length ? xs[0] : Infinity);
  const max = Math.max(min + 10, (series.finished_at ? Date.parse(series.finished_at) : Date.now()) / 1000, xs.length ? xs[xs.length - 1] + series.bucket_s : 0);
  for (const [id] of CHARTS) charts[id].setScale('x', { min, max });
}
window.addEventListener('resize', () => { for (const [id] of CHARTS) if (charts[id]) charts[id].setSize({ width: chartWidth(document.getElementById(id)), height: 160 }); });
// The chosen run ('' for the latest): status, failures and charts all read it.
let chosenRun = '';
const runQuery = () => (chosenRun ? '?run_id=' + chosenRun : '');
function drawRuns(list, shown) {
  const sel = document.getElementById('run-choice');
  const key = JSON.stringify(list.runs.map((r) => [r.run_id, r.state]));
  if (sel.dataset.key === key) return;
  sel.dataset.key = key; sel.replaceChildren(el('option', { value: '', textContent: 'latest run' }));
  for (const r of list.runs) sel.append(el('option', { value: r.run_id, textContent: 'run ' + r.run_id + ' (' + r.state + ', ' + r.orgs_finished + '/' + r.orgs_in_run + ' orgs, ' + new Date(r.started_at).toLocaleString() + ')' }));
  sel.value = chosenRun;
}
// Failed orgs of the run, a page at a time; ticked ones can be retried (reset to ready, then a run of only them).
let failedPage = { cursor: null, orgs: [], key: '' };
function drawFailures(f, more) {
  const box = document.getElementById('failures');
  const key = JSON.stringify([f.run_id, f.by_step, f.orgs.map((o) => o.org_name)]);
  if (!more && key === failedPage.key) return;
  failedPage = { cursor: f.next_cursor, orgs: more ? failedPage.orgs.concat(f.orgs) : f.orgs, key };
  box.replaceChildren();
  const entries = Object.entries(f.by_step);
  if (!entries.length) { box.append('no failed orgs in this run'); return; }
  box.append(el('div', { textContent: 'by step: ' + entries.map((e) => e[0] + ' ' + e[1]).join(' · ') }));
  const rows = failedPage.orgs.map((o) => el('tr', {},
    el('td', {}, el('input', { type: 'checkbox', name: 'retry', value: o.org_name, className: 'retry-pick' })),
    el('td', {}, el('a', { href: '#org', textContent: o.org_name, className: 'org-link', onclick: () => showOrg(o.org_name) })),
    el('td', { textContent: o.step || '?' }), el('td', { textContent: o.kind }), el('td', { className: 'reason', textContent: o.reason || '' }),
    el('td', { textContent: new Date(o.failed_at).toLocaleString() })));
  const table = el('table', { className: 'failed-orgs' }, el('tr', {}, ...['', 'org', 'step', 'kind', 'why', 'when'].map((h) => el('th', { textContent: h }))), ...rows);
  box.append(el('div', { className: 'scroll' }, table));
  if (failedPage.cursor) box.append(el('button', { type: 'button', textContent: 'more failed orgs', className: 'more-failed', onclick: async () => {
    drawFailures(await get('/migrations/' + T + '/failures?' + (f.run_id ? 'run_id=' + f.run_id + '&' : '') + 'cursor=' + encodeURIComponent(failedPage.cursor)), true);
  } }));
  box.append(el('button', { type: 'button', textContent: 'Retry the ticked orgs', className: 'retry', onclick: () => {
    const orgs = [...box.querySelectorAll('input.retry-pick:checked')].map((c) => c.value);
    if (!orgs.length) { say('Retry: tick the failed orgs to retry first', false); return; }
    if (!confirm('Retry ' + orgs.length + ' failed org(s)? Each is reset to ready (the rows mover wrote for it are deleted) and a new run migrates only them.')) return;
    act('Retry ' + orgs.length + ' org(s)', 'POST', '/migrations/' + T + '/retry', { orgs });
  } }));
}
/** One org, as GET /orgs/:name says: states, dark time, routing as Chef reads it, failures, what the survey found. */
async function showOrg(name) {
  const box = document.getElementById('org'); box.replaceChildren('reading ' + name + ' …');
  const o = await get('/orgs/' + encodeURIComponent(name));
  const lines = [el('strong', { textContent: o.org_name + ' (' + (o.org_id || 'not in the snapshot') + ')' })];
  for (const [t, s] of Object.entries(o.states || {})) lines.push(el('div', { textContent: t + ': ' + s.state + (s.fail_location ? ' at ' + s.fail_location + ': ' + (s.fail_detail || '') : '') + (s.dark_ms !== null && s.dark_ms !== undefined ? ' · dark ' + (s.dark_ms / 1000).toFixed(1) + ' s' : '') }));
  const e = o.darklaunch && o.darklaunch.effective;
  if (e) lines.push(el('div', { textContent: 'Chef serves it: ' + (e.error ? 'not at all: ' + e.error : 'containers from ' + e.containers + ', groups from ' + e.groups + (e.down ? ', down (503)' : '')) }));
  for (const f of (o.failures || []).slice(0, 5)) lines.push(el('div', { className: 'muted', textContent: 'failed ' + f.at + ' in run ' + f.run_id + ' at ' + f.step + ' (' + f.kind + '): ' + (f.detail || '') }));
  lines.push(el('div', { textContent: o.survey ? 'survey: ' + o.survey.containers + ' containers, ' + o.survey.groups + ' groups, findings: ' + ((o.survey.findings || []).join(', ') || 'none') : 'survey: not surveyed' }));
  box.replaceChildren(...lines);
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
  if (!s || !s.state || s.state === 'not_started') { box.append('No survey yet. ', el('button', { type: 'button', className: 'survey-start', textContent: 'Start the survey', onclick: startSurvey })); return; }
  box.append(s.state + ': ' + (s.orgs_surveyed ?? 0) + ' of ' + (s.orgs_total ?? '?') + ' orgs surveyed' + (s.finished_at ? ', finished ' + new Date(s.finished_at).toLocaleString() : '') + ' · ');
  box.append(el('a', { href: '/survey/orgs.csv', textContent: 'every org (CSV)' }));
  if (s.state !== 'running') box.append(' · ', el('button', { type: 'button', className: 'survey-start', textContent: 'Start a new survey', onclick: startSurvey }));
  const found = Object.entries(s.totals || {}).filter((e) => typeof e[1] === 'number' && e[1] > 0);
  box.append(el('div', { textContent: found.length ? 'findings: ' + found.map((e) => e[0] + ' ' + e[1]).join(' · ') : 'findings: none' }));
  const secs = s.estimate && s.estimate.seconds;
  if (typeof secs === 'number') box.append(el('div', { textContent: 'estimated migration window at concurrency ' + s.estimate.concurrency + ', drain wait ' + s.estimate.drain_wait_ms + ' ms: ' +
    (secs < 120 ? Math.round(secs) + ' s' : secs < 7200 ? Math.round(secs / 60) + ' min' : (secs / 3600).toFixed(1) + ' h') }));
}
function startSurvey() {
  if (confirm('Start the estate survey? It reads every org of the account snapshot from CouchDB (read-only), a few batches at a time.')) act('Start the survey', 'POST', '/survey/start', {});
}
/** Orgs/s: over the last minute of this page's samples while the run works; over the whole run before that and once it is over. */
function orgsPerSecond(status) {
  const over = ['completed', 'halted', 'failed', 'not_started'].includes(status.state);
  samples.push({ at: Date.now(), done: status.orgs_completed, run: status.run_id });
  while (samples.length && (Date.now() - samples[0].at > 60000 || samples[0].run !== status.run_id)) samples.shift();
  const first = samples[0], last = samples[samples.length - 1];
  if (!over && last.at - first.at >= 5000) return ((last.done - first.done) / ((last.at - first.at) / 1000)).toFixed(1);
  if (!status.started_at) return '–';
  const secs = ((status.finished_at ? Date.parse(status.finished_at) : Date.now()) - Date.parse(status.started_at)) / 1000;
  return secs > 0 ? (status.orgs_completed / secs).toFixed(1) : '–';
}
async function tick() {
  const [phases, status, failures, series, settings, survey, runs] = await Promise.all([get('/phases'), get('/migrations/' + T + '/status' + runQuery()), get('/migrations/' + T + '/failures' + runQuery()),
    get('/migrations/' + T + '/series' + runQuery()), get('/settings'), get('/survey').catch((e) => { console.warn('no survey to show:', e.message); return null; }), get('/migrations/' + T + '/runs?limit=50')]);
  const total = status.orgs_completed + status.objects_in_progress + (typeof status.objects_remaining === 'number' ? status.objects_remaining : 0);
  const rs = document.getElementById('runstate');
  rs.textContent = status.run_id ? 'run ' + status.run_id + ': ' + status.state : 'no run yet';
  rs.className = 'state ' + status.state;
  document.getElementById('stop-reason').textContent = status.stop_reason ? (status.state === 'completed' ? 'ended: ' : 'stopped: ') + status.stop_reason : '';
  document.getElementById('halt').hidden = status.state !== 'working';
  document.getElementById('progress').style.width = (total ? (100 * status.orgs_completed) / total : 0) + '%';
  document.getElementById('runline').textContent = status.orgs_completed + ' of ' + total + ' orgs finished, ' + status.objects_in_progress + ' in flight, concurrency ' + (status.concurrency ?? '–');
  document.getElementById('orgsps').textContent = orgsPerSecond(status);
  drawRuns(runs);
  document.getElementById('dark').textContent = status.orgs_dark ?? '?';
  const dt = status.dark, secs = (ms) => (ms === null || ms === undefined ? '–' : (ms / 1000).toFixed(1) + ' s');
  const darkTile = document.getElementById('darktime');
  darkTile.textContent = dt && dt.orgs ? secs(dt.p50_ms) + ' / ' + secs(dt.p99_ms) + ' / ' + secs(dt.max_ms) : '–';
  darkTile.className = dt && dt.saturated ? 'saturated' : '';
  document.getElementById('saturation').textContent = dt && dt.saturation ? 'Saturated: ' + dt.saturation : '';
  document.getElementById('failed').textContent = status.objects_failed;
  document.getElementById('breaker').textContent = status.breaker ? status.breaker.state + (status.breaker.reason && status.breaker.state !== 'closed' ? ': ' + status.breaker.reason : '') : '–';
  liveStatus = status;
  drawFailures(failures); drawSeries(series); drawSettings(settings, status); drawSurvey(survey); drawPhases(phases.phases, surveyAge(), settings);
  document.getElementById('at').textContent = new Date().toLocaleTimeString();
}
document.getElementById('run-choice').addEventListener('change', (ev) => { chosenRun = ev.target.value; failedPage.key = ''; tick().catch((e) => { document.getElementById('at').textContent = 'error: ' + e.message; }); });
document.getElementById('halt').addEventListener('click', () => { if (confirm('Halt the running ' + T + ' run? Orgs in flight finish; no new org starts.')) act('Halt', 'POST', '/migrations/' + T + '/halt'); });
async function loop() { try { await tick(); } catch (e) { document.getElementById('at').textContent = 'error: ' + e.message; } setTimeout(loop, 2000); }
loop();
`;
