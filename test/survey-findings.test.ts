// The estate survey's pure parts: the findings of the darklaunch hashes Chef
// reads for an org, a batch's totals, the window estimate's formula, and the
// CSV's quoting.
import { describe, expect, it } from 'vitest';
import { csvField } from '../src/api/survey-csv.js';
import { batchTotals, darklaunchFindings, type OrgSurvey } from '../src/migration/survey-findings.js';
import { windowEstimate } from '../src/runs/window-estimate.js';

const hash = (h: Record<string, string> = {}) => ({ hash: h });

describe('darklaunchFindings', () => {
  it('goes by Chef’s rule: SQL only for exactly "false", merged default < org < override', () => {
    const r = darklaunchFindings('acme', 'ready', {
      dl_default: hash({ couchdb_containers: 'false', couchdb_groups: 'false' }),
      dl_org: hash({ couchdb_groups: 'true' }),
      dl_override: hash(),
    });
    expect(r).toEqual({ served_from: 'split', findings: ['split_routing', 'on_sql_unmigrated'], problems: [] });
  });

  it('names an odd value in any hash Chef reads for the org, and a key that is not a hash', () => {
    const r = darklaunchFindings('acme', null, { dl_default: hash({ couchdb_containers: 'TRUE' }), dl_org: { type: 'list' }, dl_override: hash() });
    expect(r.served_from).toBeNull();
    expect(r.findings).toEqual(['dl_not_hash', 'dl_odd_value']);
    expect(r.problems).toEqual(['dl_org_acme is a list, not a hash: Chef answers 500', 'dl_default couchdb_containers = "TRUE"']);
  });

  it('finds a migrated org Chef still serves from CouchDB, and one dark now; not one in flight', () => {
    const up = { dl_default: hash(), dl_org: hash({ '503_mode': 'true' }), dl_override: hash() };
    expect(darklaunchFindings('acme', 'completed', up).findings).toEqual(['on_couchdb_migrated', 'dark_now']);
    expect(darklaunchFindings('acme', 'started', up).findings).toEqual(['dark_now']);
  });
});

describe('batchTotals', () => {
  const org = (o: Partial<OrgSurvey>): OrgSurvey => ({
    org_name: 'x',
    org_id: 'y',
    migration_state: null,
    containers: 12,
    groups: 4,
    documents: 18,
    bytes: 1000,
    copy_ms: 10,
    served_from: 'couchdb',
    sql_rows: 0,
    foreign_rows: 0,
    refusal: null,
    findings: [],
    detail: {},
    ...o,
  });
  it('counts orgs by finding and documents by rule, and the copy times of the orgs still to migrate only', () => {
    const t = batchTotals([
      org({ findings: ['missing_authz'], detail: { skipped_by_rule: { missing_authz: 3 } } }),
      org({ migration_state: 'completed', copy_ms: 50 }),
      org({ refusal: 'no', findings: ['preflight_refused'], copy_ms: 70 }),
      org({ containers: null, groups: null, documents: null, bytes: null, copy_ms: null, findings: ['missing_database'] }),
    ]);
    expect(t).toEqual({
      orgs: 4,
      'finding:missing_authz': 1,
      'skipped:missing_authz': 3,
      'finding:preflight_refused': 1,
      'finding:missing_database': 1,
      containers: 36,
      groups: 12,
      documents: 54,
      bytes: 3000,
      copied: 3,
      copy_ms: 130,
      to_migrate: 1,
      to_migrate_copy_ms: 10,
    });
  });
});

describe('windowEstimate', () => {
  it('is orgs × (copy + drain wait) / concurrency, bounded below by the pacing window', () => {
    expect(windowEstimate({ orgs: 100_000, copyMsTotal: 100_000 * 20, concurrency: 150, drainWaitMs: 5000, sleepTimeMs: 5000 })).toMatchObject({
      seconds: 3346.7,
      inputs: { copy_ms_mean: 20, cycle_ms: 5020, pacing_window_ms: 5000, bound_by: 'cycle' },
    });
    expect(windowEstimate({ orgs: 300, copyMsTotal: 300 * 20, concurrency: 30, drainWaitMs: 0, sleepTimeMs: 10_000 })).toMatchObject({
      seconds: 100,
      inputs: { bound_by: 'pacing' },
    });
    expect(windowEstimate({ orgs: 0, copyMsTotal: 0, concurrency: 8, drainWaitMs: 5000, sleepTimeMs: 0 })).toMatchObject({
      seconds: 0,
      inputs: { copy_ms_mean: null, bound_by: null },
    });
  });
});

describe('csvField', () => {
  it('quotes a field with a comma, a quote or a line break, doubling its quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField(null)).toBe('');
    expect(csvField(12)).toBe('12');
    expect(csvField('a "b", c')).toBe('"a ""b"", c"');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
  });
});
