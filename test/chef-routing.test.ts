// Chef's routing rule (docs/domain.md, "How Chef reads them"), case by case as
// Chef's own front end was measured to apply it: one pure function, no stores.
import { describe, expect, it } from 'vitest';
import { chefRouting, fieldsServing, keyTypeEffect, routesToSql, takesDown, type DarklaunchHashes } from '../src/chef-routing.js';

const ORG = 'acme';
const hashes = (h: Partial<DarklaunchHashes>): DarklaunchHashes => ({ dl_default: {}, dl_org: {}, dl_override: {}, ...h });

describe('a merged couchdb_* value', () => {
  it.each([
    ['"false"', 'false', true],
    ['"true"', 'true', false],
    ['no field at all', undefined, false],
    ['"0"', '0', false],
    ['"1"', '1', false],
    ['"FALSE"', 'FALSE', false],
    ['"False"', 'False', false],
    ['"yes"', 'yes', false],
    ['"no"', 'no', false],
    ['"" (empty)', '', false],
    ['" false" (padded)', ' false', false],
  ])('%s sends containers and groups to SQL: %s', (_label, value, sql) => {
    expect(routesToSql(value)).toBe(sql);
    const org: Record<string, string> = value === undefined ? {} : { couchdb_containers: value, couchdb_groups: value };
    const r = chefRouting(ORG, hashes({ dl_org: org }));
    expect([r.containers, r.groups]).toEqual(sql ? ['sql', 'sql'] : ['couchdb', 'couchdb']);
  });
});

describe('503_mode', () => {
  it.each([
    ['"true"', 'true', true],
    ['"false"', 'false', false],
    ['no field', undefined, false],
    ['"1"', '1', false],
    ['"TRUE"', 'TRUE', false],
    ['"yes"', 'yes', false],
  ])('%s takes the org down: %s', (_label, value, down) => {
    expect(takesDown(value)).toBe(down);
    expect(chefRouting(ORG, hashes({ dl_org: value === undefined ? {} : { '503_mode': value } })).down).toBe(down);
  });
});

describe('merging dl_default < dl_org_<org> < dl_override, field by field', () => {
  const cases: [string, Partial<DarklaunchHashes>, { containers: string; groups: string; down: boolean }, Record<string, string | null>][] = [
    [
      'no hash at all: CouchDB, up',
      {},
      { containers: 'couchdb', groups: 'couchdb', down: false },
      { couchdb_containers: null, couchdb_groups: null, '503_mode': null },
    ],
    [
      'a dl_default without couchdb_* fields: CouchDB',
      { dl_default: { other_flag: 'true' } },
      { containers: 'couchdb', groups: 'couchdb', down: false },
      { couchdb_containers: null, couchdb_groups: null, '503_mode': null },
    ],
    [
      'dl_default "false" (after step 2.6), no flags of its own: SQL',
      { dl_default: { couchdb_containers: 'false', couchdb_groups: 'false' } },
      { containers: 'sql', groups: 'sql', down: false },
      { couchdb_containers: 'dl_default', couchdb_groups: 'dl_default', '503_mode': null },
    ],
    [
      'dl_default "false", pinned by its own "true": CouchDB',
      { dl_default: { couchdb_containers: 'false', couchdb_groups: 'false' }, dl_org: { couchdb_containers: 'true', couchdb_groups: 'true' } },
      { containers: 'couchdb', groups: 'couchdb', down: false },
      { couchdb_containers: `dl_org_${ORG}`, couchdb_groups: `dl_org_${ORG}`, '503_mode': null },
    ],
    [
      'dl_default "false", its own "0": CouchDB (Chef keeps "0" as it is)',
      { dl_default: { couchdb_containers: 'false', couchdb_groups: 'false' }, dl_org: { couchdb_containers: '0', couchdb_groups: '0' } },
      { containers: 'couchdb', groups: 'couchdb', down: false },
      { couchdb_containers: `dl_org_${ORG}`, couchdb_groups: `dl_org_${ORG}`, '503_mode': null },
    ],
    [
      'field by field: its own containers "false", groups from dl_default "true"',
      { dl_default: { couchdb_containers: 'true', couchdb_groups: 'true' }, dl_org: { couchdb_containers: 'false' } },
      { containers: 'sql', groups: 'couchdb', down: false },
      { couchdb_containers: `dl_org_${ORG}`, couchdb_groups: 'dl_default', '503_mode': null },
    ],
    [
      "a migrated org (mover's switch): SQL, up",
      {
        dl_default: { couchdb_containers: 'true', couchdb_groups: 'true' },
        dl_org: { couchdb_containers: 'false', couchdb_groups: 'false', '503_mode': 'false' },
      },
      { containers: 'sql', groups: 'sql', down: false },
      { couchdb_containers: `dl_org_${ORG}`, couchdb_groups: `dl_org_${ORG}`, '503_mode': `dl_org_${ORG}` },
    ],
    [
      'a stray couchdb_containers in dl_override overrides every org',
      { dl_org: { couchdb_containers: 'false', couchdb_groups: 'false' }, dl_override: { couchdb_containers: 'true' } },
      { containers: 'couchdb', groups: 'sql', down: false },
      { couchdb_containers: 'dl_override', couchdb_groups: `dl_org_${ORG}`, '503_mode': null },
    ],
    [
      'a 503_mode "true" in dl_override takes every org down',
      { dl_org: { '503_mode': 'false' }, dl_override: { '503_mode': 'true' } },
      { containers: 'couchdb', groups: 'couchdb', down: true },
      { couchdb_containers: null, couchdb_groups: null, '503_mode': 'dl_override' },
    ],
    [
      'dl_default 503_mode "true" takes down an org without its own',
      { dl_default: { '503_mode': 'true' } },
      { containers: 'couchdb', groups: 'couchdb', down: true },
      { couchdb_containers: null, couchdb_groups: null, '503_mode': 'dl_default' },
    ],
    [
      'its own 503_mode "false" overrides dl_default\'s "true"',
      { dl_default: { '503_mode': 'true' }, dl_org: { '503_mode': 'false' } },
      { containers: 'couchdb', groups: 'couchdb', down: false },
      { couchdb_containers: null, couchdb_groups: null, '503_mode': `dl_org_${ORG}` },
    ],
  ];
  it.each(cases)('%s', (_label, h, expected, from) => {
    const r = chefRouting(ORG, hashes(h));
    expect({ containers: r.containers, groups: r.groups, down: r.down }).toEqual(expected);
    expect(Object.fromEntries(Object.entries(r.fields).map(([f, v]) => [f, v.from]))).toEqual(from);
  });

  it('keeps each merged value as stored, beside the key it came from', () => {
    const r = chefRouting(ORG, hashes({ dl_default: { couchdb_containers: 'false' }, dl_org: { couchdb_containers: 'FALSE', '503_mode': '1' } }));
    expect(r.fields).toEqual({
      couchdb_containers: { value: 'FALSE', from: `dl_org_${ORG}` },
      couchdb_groups: { value: null, from: null },
      '503_mode': { value: '1', from: `dl_org_${ORG}` },
    });
  });

  it('reads only the fields a hash holds itself (no inherited properties)', () => {
    const r = chefRouting('constructor', hashes({ dl_org: Object.create({ couchdb_containers: 'false' }) }));
    expect(r.containers).toBe('couchdb');
  });
});

describe('messages', () => {
  it('name each field that sends the org elsewhere, with its value and key, or that no hash sets it', () => {
    const r = chefRouting(ORG, hashes({ dl_default: { couchdb_groups: 'false' }, dl_org: { couchdb_containers: '0' } }));
    expect(fieldsServing(r, 'couchdb')).toEqual([`couchdb_containers = "0" (dl_org_${ORG})`]);
    expect(fieldsServing(r, 'sql')).toEqual(['couchdb_groups = "false" (dl_default)']);
    expect(fieldsServing(chefRouting(ORG, hashes({})), 'couchdb')).toEqual(['couchdb_containers is set in no hash', 'couchdb_groups is set in no hash']);
  });

  it('say what a key that is not a hash does to Chef: every request for dl_default and dl_override, one org for dl_org_<org>', () => {
    expect(keyTypeEffect({ key: 'dl_default', type: 'string' })).toBe('dl_default is a string, not a hash: Chef answers 500 for every request');
    expect(keyTypeEffect({ key: 'dl_override', type: 'list' })).toBe('dl_override is a list, not a hash: Chef answers 500 for every request');
    expect(keyTypeEffect({ key: 'dl_org_acme', type: 'set' })).toBe('dl_org_acme is a set, not a hash: Chef answers 500 for every request of org acme');
  });
});
