// The pacing forms: concurrency, the sleep time between org starts, the
// drain wait (below the runbook's 5 s only with the risk accepted), and the
// live-service guard's CouchDB budget. Drawn
// once, with the values as they were then: an operator types over them.
import { act } from './api.js';
import { byId, el, field, form, intOf, num, T } from './page.js';
import type { RunStatus, Settings } from './replies.js';

let drawn = false;

export function drawSettings(settings: Settings, status: RunStatus) {
  if (drawn) return;
  drawn = true;
  const box = byId('settings');
  box.append(
    form(
      (fd) => act('Concurrency', 'PUT', `/migrations/${T}/concurrency`, { concurrency: intOf(fd, 'concurrency') }),
      field('orgs in flight at once (concurrency)', num('concurrency', status.concurrency ?? 8, 1)),
      el('button', { type: 'submit', textContent: 'Set concurrency' }),
    ),
  );
  box.append(
    form(
      (fd) => act('Sleep time', 'PUT', '/settings/sleep-time', { ms: intOf(fd, 'ms') }),
      field('sleep time between org starts (ms)', num('ms', settings.sleep_time_ms)),
      el('button', { type: 'submit', textContent: 'Set sleep time' }),
    ),
  );
  box.append(
    form(
      (fd) => act('Drain wait', 'PUT', '/settings/drain-wait', { ms: intOf(fd, 'ms'), acknowledge_risk: fd.get('ack') === 'on' }),
      field('drain wait after an org goes dark (ms)', num('ms', settings.drain_wait_ms)),
      field('I accept the risk', el('input', { type: 'checkbox', name: 'ack' })),
      el('button', { type: 'submit', textContent: 'Set drain wait' }),
      el('div', {
        className: 'risk',
        textContent:
          "Risk: below 5000 ms (the runbook's sleep_time), a write the Chef API accepted just before the org went dark may land after mover copied the org, and it is lost at the switch. Check it only if you know how long your Chef API takes to finish a write.",
      }),
    ),
  );
  box.append(
    form(
      (fd) => act('CouchDB budget', 'PUT', '/settings/couchdb-budget', { p99_ms: intOf(fd, 'p99_ms') }),
      field('CouchDB p99 request-time budget (ms; 0: no guard)', num('p99_ms', settings.couchdb_budget_p99_ms)),
      el('button', { type: 'submit', textContent: 'Set CouchDB budget' }),
    ),
  );
}
