// The run's failed orgs, a page at a time: ticked ones can be retried
// (reset to ready, then a run of only them); one opened shows what
// GET /orgs/:name says of it.
import { act, get } from './api.js';
import { byId, el, say, T } from './page.js';
import type { FailedOrg, Failures, Org } from './replies.js';

let failedPage: { cursor: string | null; orgs: FailedOrg[]; key: string } = { cursor: null, orgs: [], key: '' };

/** Drawn again at the next read even when nothing changed (another run was chosen). */
export function redrawFailures() {
  failedPage.key = '';
}

/** `more`: f is the next page of the list shown, added under it. */
export function drawFailures(f: Failures, more = false) {
  const box = byId('failures');
  const key = JSON.stringify([f.run_id, f.by_step, f.orgs.map((o) => o.org_name)]);
  if (!more && key === failedPage.key) return;
  failedPage = { cursor: f.next_cursor, orgs: more ? failedPage.orgs.concat(f.orgs) : f.orgs, key };
  box.replaceChildren();
  const entries = Object.entries(f.by_step);
  if (!entries.length) {
    box.append('no failed orgs in this run');
    return;
  }
  box.append(el('div', { textContent: 'by step: ' + entries.map((e) => `${e[0]} ${e[1]}`).join(' · ') }));
  const rows = failedPage.orgs.map((o) =>
    el(
      'tr',
      {},
      el('td', {}, el('input', { type: 'checkbox', name: 'retry', value: o.org_name, className: 'retry-pick' })),
      el('td', {}, el('a', { href: '#org', textContent: o.org_name, className: 'org-link', onclick: () => showOrg(o.org_name) })),
      el('td', { textContent: o.step || '?' }),
      el('td', { textContent: o.kind }),
      el('td', { className: 'reason', textContent: o.reason || '' }),
      el('td', { textContent: new Date(o.failed_at).toLocaleString() }),
    ),
  );
  const head = el('tr', {}, ...['', 'org', 'step', 'kind', 'why', 'when'].map((h) => el('th', { textContent: h })));
  box.append(el('div', { className: 'scroll' }, el('table', { className: 'failed-orgs' }, head, ...rows)));
  if (failedPage.cursor)
    box.append(
      el('button', {
        type: 'button',
        textContent: 'more failed orgs',
        className: 'more-failed',
        onclick: async () => {
          const run = f.run_id ? `run_id=${f.run_id}&` : '';
          drawFailures(await get<Failures>(`/migrations/${T}/failures?${run}cursor=${encodeURIComponent(String(failedPage.cursor))}`), true);
        },
      }),
    );
  box.append(
    el('button', {
      type: 'button',
      textContent: 'Retry the ticked orgs',
      className: 'retry',
      onclick: () => {
        const orgs = [...box.querySelectorAll<HTMLInputElement>('input.retry-pick:checked')].map((c) => c.value);
        if (!orgs.length) {
          say('Retry: tick the failed orgs to retry first', false);
          return;
        }
        const sure = confirm(
          `Retry ${orgs.length} failed org(s)? Each is reset to ready (the rows mover wrote for it are deleted) and a new run migrates only them.`,
        );
        if (sure) void act(`Retry ${orgs.length} org(s)`, 'POST', `/migrations/${T}/retry`, { orgs });
      },
    }),
  );
}

/** One org, as GET /orgs/:name says: states, dark time, routing as Chef reads it, failures, what the survey found. */
async function showOrg(name: string) {
  const box = byId('org');
  box.replaceChildren(`reading ${name} …`);
  const o = await get<Org>('/orgs/' + encodeURIComponent(name));
  const lines = [el('strong', { textContent: `${o.org_name} (${o.org_id || 'not in the snapshot'})` })];
  for (const [t, s] of Object.entries(o.states || {})) {
    const failedAt = s.fail_location ? ` at ${s.fail_location}: ${s.fail_detail || ''}` : '';
    const dark = s.dark_ms !== null && s.dark_ms !== undefined ? ` · dark ${(s.dark_ms / 1000).toFixed(1)} s` : '';
    lines.push(el('div', { textContent: `${t}: ${s.state}${failedAt}${dark}` }));
  }
  const e = o.darklaunch && o.darklaunch.effective;
  if (e) {
    const served = e.error
      ? 'not at all: ' + e.error
      : `containers from ${String(e.containers)}, groups from ${String(e.groups)}${e.down ? ', down (503)' : ''}`;
    lines.push(el('div', { textContent: 'Chef serves it: ' + served }));
  }
  for (const f of (o.failures || []).slice(0, 5))
    lines.push(el('div', { className: 'muted', textContent: `failed ${f.at} in run ${String(f.run_id)} at ${f.step} (${f.kind}): ${f.detail || ''}` }));
  const survey = o.survey
    ? `survey: ${String(o.survey.containers)} containers, ${String(o.survey.groups)} groups, findings: ${(o.survey.findings || []).join(', ') || 'none'}`
    : 'survey: not surveyed';
  lines.push(el('div', { textContent: survey }));
  box.replaceChildren(...lines);
}
