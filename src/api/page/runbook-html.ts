// The runbook page's markup and styles (docs/operating.md, "The runbook page"):
// one static page; its script (browser/runbook.ts and the modules it
// imports, served compiled as /runbook/runbook.js: runbook-scripts.ts) polls
// the API with the sign-in cookie and acts through the same routes the CLI
// uses, each change carrying the page's CSRF token. Everything from the API
// is set as text, never as HTML; the values put into this markup server-side
// (in its <meta> tags, where the script reads them) are escaped.
import { escapeHtml } from '../html.js';

const STYLE = `
body{font:14px system-ui,sans-serif;margin:1.5rem auto;max-width:64rem;color:#222}
h1{font-size:1.4rem;margin:0 0 .3rem} h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.phase{border:1px solid #ccc;border-radius:6px;padding:.6rem .9rem;margin:.6rem 0}
.state{font-weight:600;padding:0 .4rem;border-radius:4px;background:#eee}
.completed,.done{background:#d7f5dd}.running{background:#dbe9ff}.waiting,.waiting_confirmation{background:#fff1c2}.failed,.halted{background:#ffd6d6}
ol{margin:.3rem 0 0;padding-left:1.6rem} li{margin:.15rem 0}
.cmd{font-family:ui-monospace,monospace;background:#f6f6f6;padding:.3rem .5rem;display:block;margin:.2rem 0;white-space:pre-wrap}
.bar{height:1.1rem;background:#eee;border-radius:4px;overflow:hidden;margin:.3rem 0} .bar>div{height:100%;background:#4a8af4;width:0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(8rem,1fr));gap:.5rem} .saturated{color:#b00020} .tile{border:1px solid #ddd;border-radius:6px;padding:.4rem .6rem}
.tile b{display:block;font-size:1.3rem} .muted{color:#777}
form.act{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.4rem 0} form.act label{display:flex;gap:.3rem;align-items:center}
input,textarea,button{font:inherit} input[type=number]{width:7rem} input[name=sleep_time_ms]{width:14rem} textarea{width:24rem;height:3.2rem}
#msg{margin:.5rem 0;padding:.3rem .6rem;border-radius:4px;min-height:1.2rem} #msg.ok{background:#d7f5dd} #msg.err{background:#ffd6d6}
.risk{font-size:.9em;color:#7a4b00;max-width:40rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:.8rem} .charts>div{min-width:0;overflow:hidden}
.scroll{overflow-x:auto} table.failed-orgs{border-collapse:collapse;margin:.3rem 0} .failed-orgs td,.failed-orgs th{border-bottom:1px solid #eee;padding:.15rem .4rem;text-align:left;vertical-align:top}
.failed-orgs .reason{max-width:28rem} .org{border-left:3px solid #ccc;padding:.2rem .6rem;margin:.4rem 0}
@media (max-width:700px){body{margin:.6rem}.grid{grid-template-columns:repeat(2,1fr)}textarea{width:100%}.charts{grid-template-columns:1fr}.phase{padding:.4rem .5rem}}
`;

export function runbookHtml(opts: { csrf: string; operator: string; named: boolean; type: string }): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mover runbook</title>
<meta name="csrf-token" content="${escapeHtml(opts.csrf)}"><meta name="operator" content="${escapeHtml(opts.operator)}">
<meta name="operators-named" content="${opts.named}"><meta name="migration-type" content="${escapeHtml(opts.type)}">
<link rel="stylesheet" href="/assets/uplot.css"><script src="/assets/uplot.js"></script>
<style>${STYLE}</style></head><body>
<h1>mover runbook</h1><div class="muted">signed in as <b id="me"></b> · refreshed <span id="at">…</span> · <a id="bull" href="/admin/queues">Bull Board</a> · <a href="/docs">API docs</a></div>
<div id="msg" role="status"></div>
<h2>Run <span id="runstate" class="state"></span> <select id="run-choice" aria-label="which run"><option value="">latest run</option></select> <button id="halt" hidden>Halt the run</button></h2>
<div id="stop-reason" class="muted"></div>
<div class="bar"><div id="progress"></div></div><div id="runline" class="muted"></div>
<div class="grid"><div class="tile">orgs/s<b id="orgsps">–</b></div><div class="tile">orgs dark now<b id="dark">–</b></div>
<div class="tile">dark time p50 / p99 / max<b id="darktime">–</b></div>
<div class="tile">failed<b id="failed">–</b></div><div class="tile">breaker<b id="breaker">–</b></div></div>
<div id="saturation" class="saturated"></div><div id="guard" class="muted"></div>
<div class="charts"><div id="chart-rate"></div><div id="chart-dark"></div><div id="chart-p99"></div></div><div id="resolution" class="muted"></div>
<h2>Failed orgs</h2><div id="failures"></div><div id="org" class="org"></div>
<h2>Pacing</h2><div id="settings"></div>
<h2>Estate survey</h2><div id="survey" class="muted"></div>
<h2>Phases</h2><div id="phases"></div>
<script type="module" src="/runbook/runbook.js"></script></body></html>`;
}
