// GET /survey/orgs.csv: one row per org of the latest survey (docs/api.md,
// "Survey"), streamed page by page (keyset on the org name), so the api holds
// one page whatever the estate's size. Fields are quoted as RFC 4180 says.
import { Readable } from 'node:stream';
import type { Db } from '../stores/postgres.js';
import { surveyPage, type SurveyedOrg } from '../db/survey.js';
import { SKIP_RULES } from '../migration/survey-findings.js';

const PAGE = 1000;

export const CSV_COLUMNS = [
  'org_name',
  'org_id',
  'migration_state',
  'served_from',
  'containers',
  'groups',
  'documents',
  'bytes',
  'copy_ms',
  'sql_rows',
  'foreign_rows',
  'findings',
  ...SKIP_RULES.map((r) => `skipped_${r}`),
  'no_requester',
  'preflight_refusal',
  'darklaunch_problems',
  'error',
] as const;

/** A field as RFC 4180 has it: quoted, its quotes doubled, when it holds a comma, a quote or a line break. */
export function csvField(v: string | number | null | undefined): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function csvRow(o: SurveyedOrg): string {
  const d = o.detail as { skipped_by_rule?: Record<string, number>; no_requester?: number; darklaunch?: string[]; error?: string };
  const cells: (string | number | null | undefined)[] = [
    o.org_name,
    o.org_id,
    o.migration_state,
    o.served_from,
    o.containers,
    o.groups,
    o.documents,
    o.bytes,
    o.copy_ms,
    o.sql_rows,
    o.foreign_rows,
    o.findings.join(' '),
    ...SKIP_RULES.map((r) => (o.containers === null ? null : (d.skipped_by_rule?.[r] ?? 0))),
    d.no_requester,
    o.refusal,
    d.darklaunch?.join('; '),
    d.error,
  ];
  return `${cells.map(csvField).join(',')}\r\n`;
}

async function* rows(db: Db, runId: string | null): AsyncGenerator<string> {
  yield `${CSV_COLUMNS.join(',')}\r\n`;
  if (!runId) return;
  let after: string | undefined;
  for (;;) {
    const page = await surveyPage(db, runId, { after, limit: PAGE });
    if (page.length) yield page.map(csvRow).join('');
    if (page.length < PAGE) return;
    after = page[page.length - 1].org_name;
  }
}

/** The survey's rows as a stream: the next page is read only as the client takes the last. */
export const surveyCsv = (db: Db, runId: string | null): Readable => Readable.from(rows(db, runId));
