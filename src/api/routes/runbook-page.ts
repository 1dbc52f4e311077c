// The runbook page (GET /runbook): where an operator looks instead of reads.
// One static page, no build step; it polls the API with the sign-in cookie
// and draws the four phases and their steps, the waiting manual step's
// command, the current run's progress, orgs/s over the last minutes,
// failures by step, orgs dark now, and a link to Bull Board. Everything from
// the API is set as text, never as HTML.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { PHASE_2_MIGRATION } from '../../queue-names.js';

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mover runbook</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem auto;max-width:60rem;color:#222}
h1{font-size:1.4rem;margin:0 0 .3rem} h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.phase{border:1px solid #ccc;border-radius:6px;padding:.6rem .9rem;margin:.6rem 0}
.state{font-weight:600;padding:0 .4rem;border-radius:4px;background:#eee}
.completed,.done{background:#d7f5dd}.running{background:#dbe9ff}.waiting,.waiting_confirmation{background:#fff1c2}.failed,.halted{background:#ffd6d6}
ol{margin:.3rem 0 0;padding-left:1.6rem} li{margin:.15rem 0}
.cmd{font-family:ui-monospace,monospace;background:#f6f6f6;padding:.3rem .5rem;display:block;margin:.2rem 0;white-space:pre-wrap}
.bar{height:1.1rem;background:#eee;border-radius:4px;overflow:hidden;margin:.3rem 0} .bar>div{height:100%;background:#4a8af4;width:0}
.grid{display:grid;grid-template-columns:repeat(5,1fr);gap:.5rem} .saturated{color:#b00020} .tile{border:1px solid #ddd;border-radius:6px;padding:.4rem .6rem}
.tile b{display:block;font-size:1.3rem} #rate{width:100%;height:60px} .muted{color:#777}
</style></head><body>
<h1>mover runbook</h1><div class="muted">refreshed <span id="at">…</span> · <a id="bull" href="/admin/queues">Bull Board</a> · <a href="/docs">API docs</a></div>
<h2>Current run <span id="runstate" class="state"></span></h2>
<div class="bar"><div id="progress"></div></div><div id="runline" class="muted"></div>
<div class="grid"><div class="tile">orgs/s (last 5 min)<b id="orgsps">–</b></div><div class="tile">orgs dark now<b id="dark">–</b></div>
<div class="tile">dark time p50 / p99 / max<b id="darktime">–</b></div>
<div class="tile">failed<b id="failed">–</b></div><div class="tile">breaker<b id="breaker">–</b></div></div>
<canvas id="rate" width="900" height="60"></canvas>
<div id="failures" class="muted"></div>
<h2>Phases</h2><div id="phases"></div>
<script>
const T = '${PHASE_2_MIGRATION}';
const samples = [];
const el = (tag, props = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, props); for (const k of kids) e.append(k); return e; };
async function get(path) { const r = await fetch(path, { credentials: 'same-origin' }); if (r.status === 401) { location.href = '/login?next=/runbook'; throw new Error('signed out'); } return r.json(); }
function drawRate() {
  const c = document.getElementById('rate'), g = c.getContext('2d'); g.clearRect(0, 0, c.width, c.height);
  const pts = []; for (let i = 1; i < samples.length; i++) pts.push((samples[i].done - samples[i - 1].done) / ((samples[i].at - samples[i - 1].at) / 1000));
  const max = Math.max(1, ...pts); g.strokeStyle = '#4a8af4'; g.beginPath();
  pts.forEach((v, i) => { const x = (i / Math.max(1, pts.length - 1)) * c.width, y = c.height - (v / max) * (c.height - 4); i ? g.lineTo(x, y) : g.moveTo(x, y); }); g.stroke();
}
async function tick() {
  const [phases, status, failures] = await Promise.all([get('/phases'), get('/migrations/' + T + '/status'), get('/migrations/' + T + '/failures')]);
  const total = status.orgs_completed + status.objects_in_progress + (typeof status.objects_remaining === 'number' ? status.objects_remaining : 0);
  document.getElementById('runstate').textContent = status.runId ? 'run ' + status.runId + ': ' + status.state : 'no run yet';
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
  darkTile.title = dt && dt.saturated ? 'orgs stay dark ' + secs(dt.past_drain_p99_ms) + ' past the drain wait at p99: the fleet cannot keep up at this concurrency' : '';
  document.getElementById('failed').textContent = status.objects_failed;
  document.getElementById('breaker').textContent = status.breaker ? status.breaker.state + (status.breaker.reason && status.breaker.state !== 'closed' ? ': ' + status.breaker.reason : '') : '–';
  document.getElementById('failures').textContent = Object.keys(failures.by_step).length ? 'failures by step: ' + Object.entries(failures.by_step).map(([s, n]) => s + ' ' + n).join(', ') : '';
  drawRate();
  const box = document.getElementById('phases'); box.replaceChildren();
  for (const p of phases.phases) {
    const steps = el('ol');
    for (const s of p.steps) {
      const d = s.detail || {};
      const li = el('li', {}, el('span', { className: 'state ' + s.state, textContent: s.state }), ' ' + s.id + ' ' + s.title);
      if (d.orgs_in_run !== undefined) li.append(' (' + (d.orgs_finished ?? 0) + '/' + d.orgs_in_run + ' orgs, ' + (d.orgs_failed ?? 0) + ' failed)');
      if (s.state === 'waiting_confirmation') li.append(el('span', { className: 'cmd', textContent: 'run: ' + (d.command || '(manual step)') + '\\nthen: mover phase confirm ' + p.phase + ' ' + s.id + ' --by <your name>' }));
      if (s.state === 'failed' && d.error) li.append(el('div', { className: 'muted', textContent: d.error }));
      steps.append(li);
    }
    box.append(el('div', { className: 'phase' }, el('strong', { textContent: 'Phase ' + p.phase + ': ' + p.title + ' ' }), el('span', { className: 'state ' + p.state, textContent: p.state }), steps));
  }
  document.getElementById('at').textContent = new Date().toLocaleTimeString();
}
async function loop() { try { await tick(); } catch (e) { document.getElementById('at').textContent = 'error: ' + e.message; } setTimeout(loop, 2000); }
loop();
</script></body></html>`;

export default async function runbookPage(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/runbook', { schema: { summary: 'The runbook page (HTML)', produces: ['text/html'], response: { 200: Type.String() } } }, async (_req, reply) =>
    reply.type('text/html').send(PAGE),
  );
}
