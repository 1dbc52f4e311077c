// The page's calls of the API, as the signed-in operator: by the cookie the
// login form set, each change with the page's CSRF token
// (src/api/plugins/auth.ts); signed out, the browser goes to the login form.
// A refusal is shown in the API's own words.
import { CSRF, ME, say } from './page.js';
import type { ActionReply } from './replies.js';

export async function get<R>(path: string): Promise<R> {
  const r = await fetch(path, { credentials: 'same-origin' });
  if (r.status === 401) {
    location.href = '/login?next=/runbook';
    throw new Error('signed out');
  }
  return (await r.json()) as R;
}

async function send(method: string, path: string, body: unknown) {
  const r = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': CSRF },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let b: ActionReply = {};
  try {
    b = (await r.json()) as ActionReply;
  } catch {
    // A reply without a JSON body still says something: its status, shown with this.
    b = { message: 'no reply body' };
  }
  if (r.status === 401) location.href = '/login?next=/runbook';
  return { ok: r.ok, status: r.status, body: b };
}

let refresh = () => {};
/** What runs after every action, done or refused: the page reads the API again at once (runbook.ts sets it). */
export function afterEachAction(f: () => void) {
  refresh = f;
}

/** An operator's action: its outcome in #msg (a refusal with the API's reason and any preflight problems), then the page refreshed. */
export async function act(what: string, method: string, path: string, body?: unknown) {
  const r = await send(method, path, body);
  const problems = (r.body.preflight || []).map((p) => p.problem + (p.fix ? ` (fix: ${p.fix})` : ''));
  if (r.ok) say(`${what}: done, as ${ME}`, true);
  else
    say(
      `${what} was refused (${r.status} ${r.body.error || ''}): ${r.body.message || 'no reason given'}${problems.length ? '. ' + problems.join('; ') : ''}`,
      false,
    );
  refresh();
  return r;
}
