// Who is asking, and org lists that come as files (legacy reset_orgs_from_file).
import type { FastifyRequest } from 'fastify';

/**
 * The actor recorded in the audit log: the operator the request
 * authenticated as (src/api/operators.ts). With the one shared
 * MOVER_API_TOKEN the api cannot tell who is asking, so the X-Mover-Actor
 * header, when given, names them (else "operator").
 */
export function actorOf(req: FastifyRequest): string {
  if (req.server.operators?.named && req.operator) return req.operator;
  const h = req.headers['x-mover-actor'];
  const v = (Array.isArray(h) ? h[0] : h)?.split('\u0000').join('').trim();
  return v ? v.slice(0, 100) : (req.operator ?? 'operator');
}

export interface OrgLine {
  line: number;
  org: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    orgLines?: OrgLine[];
  }
}

/**
 * preValidation hook: a text/plain body (one org name a line; blank lines and
 * # comments ignored) becomes {"orgs": [...]}, and the line of each name is
 * kept for the per-line results.
 */
export async function orgsFromText(req: FastifyRequest): Promise<void> {
  if (typeof req.body !== 'string') return;
  const lines: OrgLine[] = [];
  req.body.split(/\r?\n/).forEach((raw, i) => {
    const org = raw.trim();
    if (org && !org.startsWith('#')) lines.push({ line: i + 1, org });
  });
  req.orgLines = lines;
  req.body = { orgs: lines.map((l) => l.org) };
}

/** Per-line results for a file upload: each line's outcome, and the lines of names that failed. */
export function lineResults(req: FastifyRequest, outcomeOf: (org: string) => string, ok: string[]) {
  if (!req.orgLines) return {};
  const lines = req.orgLines.map((l) => ({ ...l, result: outcomeOf(l.org) }));
  return { lines, failed_lines: lines.filter((l) => !ok.includes(l.result)).map((l) => ({ line: l.line, org: l.org, result: l.result })) };
}
