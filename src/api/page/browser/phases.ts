// The runbook's four phases on the page: each step with its state and
// counts, the waiting manual step's command and its confirm form, and each
// phase's start form (resume, or run again with "again" ticked).
import { act } from './api.js';
import { asText, byId, el, field, form, intOf, ME, NAMED, num, textOf } from './page.js';
import type { Phase, RunStatus, Settings, Step } from './replies.js';
import { orgsInRun } from './run-rate.js';

// Each form shows the settings as they are now: the sleep time field is empty (the current one stands) unless the operator types one.
const PHASE_FIELDS: Record<number, (settings: Settings | null) => HTMLElement[]> = {
  1: () => [field('orgs (one a line)', el('textarea', { name: 'orgs' })), field('concurrency', num('concurrency', 8, 1))],
  2: () => [],
  3: (settings) => [
    field('concurrency', num('concurrency', 8, 1)),
    field(
      'sleep time (ms)',
      el('input', {
        type: 'number',
        name: 'sleep_time_ms',
        min: '0',
        value: '',
        placeholder: `now ${settings ? settings.sleep_time_ms : '?'} (unchanged if empty)`,
      }),
    ),
  ],
  4: () => [
    field('type purge-couchdb-data to confirm', el('input', { name: 'confirm', size: 20 })),
    field('dry run', el('input', { type: 'checkbox', name: 'dry_run', checked: true })),
  ],
};

function phaseBody(n: number, fd: FormData) {
  const b: Record<string, unknown> = {};
  if (n === 1)
    b.orgs = textOf(fd, 'orgs')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter(Boolean);
  if (n === 1 || n === 3) {
    const c = intOf(fd, 'concurrency');
    if (c !== undefined) b.concurrency = c;
  }
  if (n === 3) {
    const s = intOf(fd, 'sleep_time_ms');
    if (s !== undefined) b.sleep_time_ms = s;
  }
  if (n === 4) {
    b.confirm = textOf(fd, 'confirm');
    b.dry_run = fd.get('dry_run') === 'on';
  }
  if (fd.get('again') === 'on') b.again = true;
  return b;
}

/** A step's line. `live`: the run shown above (latest, or chosen); a running step of the same run takes its counts from it, so the two never disagree. */
function stepItem(p: Phase, s: Step, live: RunStatus | null) {
  const own = s.detail || {};
  const d =
    s.state === 'running' && live && own.run_id && asText(own.run_id) === String(live.run_id)
      ? { ...own, orgs_in_run: orgsInRun(live), orgs_finished: live.orgs_completed, orgs_failed: live.objects_failed }
      : own;
  const li = el('li', {}, el('span', { className: 'state ' + s.state, textContent: s.state }), ` ${s.id} ${s.title}`);
  if (d.orgs_in_run !== undefined) li.append(` (${asText(d.orgs_finished ?? 0)}/${asText(d.orgs_in_run)} orgs, ${asText(d.orgs_failed ?? 0)} failed)`);
  if (d.note) li.append(el('span', { className: 'muted', textContent: ' — ' + asText(d.note) }));
  if (s.confirmed_by) li.append(el('span', { className: 'muted', textContent: ' confirmed by ' + s.confirmed_by }));
  if (s.state === 'waiting_confirmation') {
    li.append(el('span', { className: 'cmd', textContent: 'run: ' + asText(d.command || '(manual step)') }));
    const kids: HTMLElement[] = [field('note', el('input', { name: 'note', size: 40 }))];
    if (!NAMED) kids.unshift(field('your name', el('input', { name: 'by', value: ME === 'operator' ? '' : ME, required: true })));
    kids.push(el('button', { type: 'submit', textContent: `Confirm step ${s.id} is done`, className: 'confirm' }));
    li.append(
      form(
        (fd) => {
          const body: { note?: string; by?: string } = {};
          const note = textOf(fd, 'note');
          if (note) body.note = note;
          if (!NAMED) body.by = textOf(fd, 'by');
          return act('Confirm step ' + s.id, 'POST', `/phases/${p.phase}/steps/${s.id}/confirm`, body);
        },
        ...kids,
      ),
    );
  }
  return li;
}

// Drawn again only when something changed, and never under an operator who is typing in one of its forms.
let phasesKey = '';
let typing = false;
byId('phases').addEventListener('input', () => {
  typing = true;
});
byId('phases').addEventListener('submit', () => {
  typing = false;
});

/** The phases, with surveyLine (how old the estate survey is) under phase 1. */
export function drawPhases(phases: Phase[], surveyLine: string, settings: Settings | null, live: RunStatus | null) {
  const key = JSON.stringify(phases) + surveyLine + JSON.stringify(settings) + (live ? `${live.orgs_completed}/${live.objects_failed}` : '');
  if (key === phasesKey || typing) return;
  phasesKey = key;
  const box = byId('phases');
  box.replaceChildren();
  for (const p of phases) {
    const steps = el('ol');
    for (const s of p.steps) steps.append(stepItem(p, s, live));
    const kids: HTMLElement[] = [
      el('strong', { textContent: `Phase ${p.phase}: ${p.title} ` }),
      el('span', { className: 'state ' + p.state, textContent: p.state }),
    ];
    if (p.started_by) kids.push(el('span', { className: 'muted', textContent: ' started by ' + p.started_by }));
    if (p.phase === 1) kids.push(el('div', { className: 'muted survey-age', textContent: surveyLine }));
    kids.push(steps);
    if (p.state !== 'running' && p.state !== 'waiting') {
      const label =
        p.state === 'failed' || p.state === 'halted'
          ? `Resume phase ${p.phase}`
          : p.state === 'completed'
            ? `Run phase ${p.phase} again`
            : `Start phase ${p.phase}`;
      // A completed phase runs again only when the operator ticks "again": without it the api refuses and says what it would do.
      const again =
        p.state === 'completed'
          ? [field('again: I know it runs every step of the phase once more', el('input', { type: 'checkbox', name: 'again', className: `again-${p.phase}` }))]
          : [];
      kids.push(
        form(
          (fd) => act(label, 'POST', `/phases/${p.phase}/start`, phaseBody(p.phase, fd)),
          ...PHASE_FIELDS[p.phase](settings),
          ...again,
          el('button', { type: 'submit', textContent: label, className: `start-${p.phase}` }),
        ),
      );
    }
    box.append(el('div', { className: 'phase' }, ...kids));
  }
}
