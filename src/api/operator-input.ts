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
    /** The # comment lines of a text/plain list: reported as skipped, each with its line. */
    commentLines?: OrgLine[];
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
  const comments: OrgLine[] = [];
  req.body.split(/\r?\n/).forEach((raw, i) => {
    const org = raw.trim();
    if (org.startsWith('#')) comments.push({ line: i + 1, org });
    else if (org) lines.push({ line: i + 1, org });
  });
  req.orgLines = lines;
  req.commentLines = comments;
  req.body = { orgs: lines.map((l) => l.org) };
}

/** Per-line results for a file upload: each line's outcome, and the lines of names that failed. */
export function lineResults(req: FastifyRequest, outcomeOf: (org: string) => string, ok: string[]) {
  if (!req.orgLines) return {};
  const named = req.orgLines.map((l) => ({ ...l, result: outcomeOf(l.org) }));
  // Every line that was not blank, in file order: a comment is said to be one, so no line is skipped unexplained.
  const comments = (req.commentLines ?? []).map((l) => ({ ...l, result: 'skipped: a comment' }));
  const lines = [...named, ...comments].sort((a, b) => a.line - b.line);
  return { lines, failed_lines: named.filter((l) => !ok.includes(l.result)).map((l) => ({ line: l.line, org: l.org, result: l.result })) };
}
