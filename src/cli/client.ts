// The CLI's side of the HTTP API: it runs anywhere an operator has the api's
// URL and token (MOVER_API_URL, MOVER_API_TOKEN), and turns every failure into
// one line and a documented exit code.

/** Exit codes (docs/operating.md, "The mover CLI"): 0 done, 1 error, 2 usage, 3 conflict (409), 4 not found (404). */
export const EXIT = { ok: 0, error: 1, usage: 2, conflict: 3, notFound: 4 } as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The api's refusal as it sent it ({error, message, ...}), for --json. */
    readonly reply?: { status: number; body: unknown },
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** What --json prints for a failure: the api's own refusal where there was one, else {error, message}; same exit code either way. */
export function errorJson(err: unknown): Record<string, unknown> {
  if (err instanceof CliError && err.reply && typeof err.reply.body === 'object' && err.reply.body)
    return { status: err.reply.status, ...(err.reply.body as Record<string, unknown>) };
  const code = err instanceof CliError ? Object.entries(EXIT).find(([, c]) => c === err.exitCode)?.[0] : 'error';
  return { error: code ?? 'error', message: err instanceof Error ? err.message : String(err) };
}

export interface Api {
  url: string;
  /** The api's reply, of the type the caller names (replies.ts: the route's own schema); unknown where it names none. */
  call<T = unknown>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, contentType?: string): Promise<T>;
}

export function apiFromEnv(env: Record<string, string | undefined> = process.env): Api {
  const url = (env.MOVER_API_URL?.trim() || 'http://127.0.0.1:3000').replace(/\/+$/, '');
  const token = env.MOVER_API_TOKEN?.trim();
  return {
    url,
    async call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
      if (!token) throw new CliError('MOVER_API_TOKEN is not set: the api answers nothing without it', EXIT.usage);
      let res: Response;
      try {
        res = await fetch(url + path, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body !== undefined ? { 'content-type': contentType } : {}),
            'x-mover-actor': env.USER ?? 'mover-cli',
          },
          // A text/plain body (an org list as a file) is the string it is.
          body: body === undefined ? undefined : contentType === 'application/json' || typeof body !== 'string' ? JSON.stringify(body) : body,
        });
      } catch (err) {
        throw new CliError(
          `cannot reach the api at ${url} (MOVER_API_URL): ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
          EXIT.error,
        );
      }
      const text = await res.text();
      let data: unknown = text;
      try {
        data = text ? JSON.parse(text) : null;
      } catch (err) {
        // Not JSON (the metrics text): handed back as it is.
        data = text || String(err);
      }
      // The route's schema says what a reply holds (the caller names it, replies.ts).
      if (res.ok) return data as T;
      const refusal = typeof data === 'object' && data ? (data as { error?: string; message?: string }) : null;
      const why = refusal ? `${refusal.error ?? res.status}: ${refusal.message ?? text}` : text;
      const reply = { status: res.status, body: data };
      if (res.status === 401) throw new CliError(`401 unauthorized: the api refused MOVER_API_TOKEN`, EXIT.error, reply);
      if (res.status === 409) throw new CliError(`409 ${why}`, EXIT.conflict, reply);
      if (res.status === 404) throw new CliError(`404 ${why}`, EXIT.notFound, reply);
      throw new CliError(`${res.status} ${why}`, EXIT.error, reply);
    },
  };
}

/** A query string from the values given (undefined ones left out), with its `?`. */
export const query = (q: Record<string, string | number | undefined>) => {
  const s = Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`)
    .join('&');
  return s ? `?${s}` : '';
};

/** Every page of a paged reply (`key` its list, next_cursor its continuation), or one page; and a hint when there is more. */
export async function pages<R extends { next_cursor: string | null }, K extends keyof R>(
  api: Api,
  path: (cursor?: string) => string,
  key: K,
  all: boolean,
  cursor?: string,
): Promise<{ items: R[K] extends (infer I)[] ? I[] : never; next: string | null; last: R }> {
  const items: unknown[] = [];
  let next: string | null = cursor ?? null;
  let last: R;
  do {
    last = await api.call<R>('GET', path(next ?? undefined));
    items.push(...(last[key] as unknown[]));
    next = last.next_cursor ?? null;
  } while (all && next);
  return { items: items as R[K] extends (infer I)[] ? I[] : never, next, last };
}
