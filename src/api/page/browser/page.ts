// What the parts of the runbook page's script share: the values the server
// wrote into the page's <meta> tags (src/api/page/runbook-html.ts), and the
// few helpers the page's elements are built with. Everything from the API
// is set as text (textContent, or a string appended), never as HTML.

function meta(name: string): string {
  const tag = document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`);
  if (!tag) throw new Error(`the page has no ${name} meta tag`);
  return tag.content;
}

/** The migration type the page follows. */
export const T = meta('migration-type');
/** Sent as X-CSRF-Token with every change (src/api/plugins/auth.ts). */
export const CSRF = meta('csrf-token');
/** Who is signed in, and whether operators are named (else one shared token, and a confirmation says who did the step). */
export const ME = meta('operator');
export const NAMED = meta('operators-named') === 'true';

export function byId<E extends HTMLElement = HTMLElement>(id: string): E {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as E;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...kids: (Node | string)[]) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const k of kids) e.append(k);
  return e;
}

export const field = (label: string, input: HTMLElement) => el('label', {}, label, input);

export const num = (name: string, value: number | null | undefined, min?: number) =>
  el('input', { type: 'number', name, value: String(value ?? ''), min: String(min ?? 0) });

/** A form whose submit the page handles itself (the browser does not post it). */
export function form(submit: (fd: FormData) => unknown, ...kids: (Node | string)[]): HTMLFormElement {
  const f = el('form', { className: 'act' }, ...kids);
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(new FormData(f));
  });
  return f;
}

/** A form field's text ('' when the form has no such field). */
export function textOf(fd: FormData, name: string): string {
  const v = fd.get(name);
  return typeof v === 'string' ? v : '';
}

/** A number field's value, or undefined when left empty. */
export function intOf(fd: FormData, name: string): number | undefined {
  const v = textOf(fd, name).trim();
  return v === '' ? undefined : Number(v);
}

/** A value of a reply whose shape varies (a step's detail) as text: a string as it is, anything else as JSON (a number as its digits). */
export const asText = (v: unknown): string => (typeof v === 'string' ? v : String(JSON.stringify(v)));

/** The line under the title that says how the operator's last action went. */
export function say(text: string, ok: boolean) {
  const m = byId('msg');
  m.textContent = text;
  m.className = ok ? 'ok' : 'err';
}
