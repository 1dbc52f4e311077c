// Pure rules, no stores: how a CouchDB document becomes a SQL row, and how the
// server's welcome decides Mango.
import { describe, expect, it } from 'vitest';
import { planObjects, UNKNOWN_REQUESTER } from '../src/migration/plan-objects.js';
import { fromWelcome } from '../src/stores/couch.js';
import { docType, TYPES } from '../src/stores/couch-docs.js';

const id = (n: number) => String(n).padStart(32, '0');
const authz = (n: number) => 'a' + String(n).padStart(31, '0');

describe('document type', () => {
  it('is the first of json_class, couchrest-type, type that is present, even when it is not a string', () => {
    expect(docType({ json_class: 'A', 'couchrest-type': 'B', type: 'C' })).toBe('A');
    expect(docType({ 'couchrest-type': 'B', type: 'C' })).toBe('B');
    expect(docType({ type: 'C' })).toBe('C');
    expect(docType({ json_class: null, 'couchrest-type': TYPES.group })).toBeUndefined();
    expect(docType({})).toBeUndefined();
  });
});

describe('planObjects', () => {
  it('names a group by its groupname and a container by its containername, never by name', () => {
    const docs = [
      { _id: id(1), 'couchrest-type': TYPES.group, groupname: 'admins', name: 'other' },
      { _id: id(2), 'couchrest-type': TYPES.container, containername: 'nodes', name: 'other', groupname: 'x' },
      { _id: id(3), 'couchrest-type': TYPES.group, name: 'only-name' },
      { _id: id(4), 'couchrest-type': TYPES.container, containername: 42 },
    ];
    const plan = planObjects(docs, new Map(docs.map((d, i) => [d._id, authz(i)])));
    expect(plan.groups.map((r) => r.name)).toEqual(['admins']);
    expect(plan.containers.map((r) => r.name)).toEqual(['nodes']);
    expect(plan.skipped).toEqual([
      { docId: id(3), table: 'groups', reason: 'no_name' },
      { docId: id(4), table: 'containers', reason: 'no_name' },
    ]);
  });

  it('keeps the smaller _id of a duplicate name or authz id, skips long ids and missing authz, and zeroes a bad requester', () => {
    const docs = [
      { _id: id(9), 'couchrest-type': TYPES.group, groupname: 'twins', requester_id: 'b'.repeat(32) },
      { _id: id(5), 'couchrest-type': TYPES.group, groupname: 'twins', requester_id: 'nope' },
      { _id: id(6), 'couchrest-type': TYPES.container, containername: 'shared-authz-1' },
      { _id: id(7), 'couchrest-type': TYPES.container, containername: 'shared-authz-2' },
      { _id: 'x'.repeat(37), 'couchrest-type': TYPES.container, containername: 'long' },
      { _id: id(8), 'couchrest-type': TYPES.container, containername: 'no-authz' },
      { _id: id(10), 'couchrest-type': 'Chef::Node', name: 'ignored' },
    ];
    const map = new Map([
      [id(9), authz(9)],
      [id(5), authz(5)],
      [id(6), authz(6)],
      [id(7), authz(6)],
      ['x'.repeat(37), authz(1)],
    ]);
    const plan = planObjects(docs, map);
    expect(plan.groups).toEqual([expect.objectContaining({ id: id(5), name: 'twins', last_updated_by: UNKNOWN_REQUESTER })]);
    expect(plan.containers.map((r) => r.id)).toEqual([id(6)]);
    expect(plan.skipped.map((s) => [s.docId, s.reason, s.keptDocId])).toEqual([
      [id(7), 'duplicate_authz', id(6)],
      [id(8), 'missing_authz', undefined],
      [id(9), 'duplicate_name', id(5)],
      ['x'.repeat(37), 'bad_id', undefined],
    ]);
    expect(plan.noRequester).toEqual([id(5), id(6)]);
  });
});

describe('planObjects: messy data', () => {
  it('treats authz ids as one whatever their case: the second of two ids differing only in case is a duplicate, rows hold them lower-case', () => {
    const docs = [
      { _id: id(1), 'couchrest-type': TYPES.group, groupname: 'upper' },
      { _id: id(2), 'couchrest-type': TYPES.group, groupname: 'lower' },
    ];
    const plan = planObjects(
      docs,
      new Map([
        [id(1), 'ABCDEF' + '0'.repeat(26)],
        [id(2), 'abcdef' + '0'.repeat(26)],
      ]),
    );
    expect(plan.groups).toEqual([expect.objectContaining({ id: id(1), authz_id: 'abcdef' + '0'.repeat(26) })]);
    expect(plan.skipped).toEqual([{ docId: id(2), table: 'groups', reason: 'duplicate_authz', keptDocId: id(1) }]);
  });

  it('takes an _id of exactly 36 characters (a UUID with dashes) and skips one of 37', () => {
    const uuid = '0123abcd-0123-4567-89ab-0123456789ab';
    const docs = [
      { _id: uuid, 'couchrest-type': TYPES.container, containername: 'uuid-id' },
      { _id: uuid + 'x', 'couchrest-type': TYPES.container, containername: 'too-long' },
    ];
    const plan = planObjects(
      docs,
      new Map([
        [uuid, authz(1)],
        [uuid + 'x', authz(2)],
      ]),
    );
    expect(plan.containers.map((r) => r.id)).toEqual([uuid]);
    expect(plan.skipped).toEqual([{ docId: uuid + 'x', table: 'containers', reason: 'bad_id' }]);
  });

  it('keeps names with unicode, quotes and inner spaces exactly, skips blank ones, and keeps one name per table (a group and a container may share it)', () => {
    const docs = [
      { _id: id(1), 'couchrest-type': TYPES.group, groupname: 'ops\' "ünïcødé" 组' },
      { _id: id(2), 'couchrest-type': TYPES.group, groupname: '   ' },
      { _id: id(3), 'couchrest-type': TYPES.group, groupname: 'shared' },
      { _id: id(4), 'couchrest-type': TYPES.container, containername: 'shared' },
      { _id: id(5), 'couchrest-type': TYPES.group, groupname: 'Shared' },
    ];
    const plan = planObjects(docs, new Map(docs.map((d, i) => [d._id, authz(i)])));
    expect(plan.groups.map((r) => r.name)).toEqual(['ops\' "ünïcødé" 组', 'shared', 'Shared']);
    expect(plan.containers.map((r) => r.name)).toEqual(['shared']);
    expect(plan.skipped).toEqual([{ docId: id(2), table: 'groups', reason: 'no_name' }]);
  });

  it('finds the type by json_class first, ignores every other type, and plans nothing from nothing', () => {
    const docs = [
      { _id: id(1), json_class: TYPES.container, 'couchrest-type': 'Chef::Node', containername: 'by-json-class' },
      { _id: id(2), json_class: 'Chef::Role', 'couchrest-type': TYPES.group, groupname: 'a-role' },
      { _id: id(3), type: TYPES.group, groupname: 'by-type' },
    ];
    const plan = planObjects(docs, new Map(docs.map((d, i) => [d._id, authz(i)])));
    expect(plan.containers.map((r) => r.name)).toEqual(['by-json-class']);
    expect(plan.groups.map((r) => r.name)).toEqual(['by-type']);
    expect(planObjects([], new Map())).toEqual({ containers: [], groups: [], skipped: [], noRequester: [] });
  });

  it('skips an authz id that is not 32 hex characters as missing', () => {
    const docs = [{ _id: id(1), 'couchrest-type': TYPES.group, groupname: 'bad-authz' }];
    expect(planObjects(docs, new Map([[id(1), 'not-hex']])).skipped).toEqual([{ docId: id(1), table: 'groups', reason: 'missing_authz' }]);
  });
});

describe('the server welcome', () => {
  it('decides Mango for CouchDB by its version, and leaves other servers to be asked', () => {
    expect(fromWelcome({ couchdb: 'Welcome', version: '1.6.1' })).toEqual({ server: 'CouchDB 1.6.1', mango: false });
    expect(fromWelcome({ couchdb: 'Welcome', version: '2.3.1', features: [] })).toEqual({ server: 'CouchDB 2.3.1', mango: true });
    expect(fromWelcome({ couchdb: 'Welcome', version: '3.3.3' })).toEqual({ server: 'CouchDB 3.3.3', mango: true });
    expect(fromWelcome({ 'express-pouchdb': 'Welcome!', version: '4.2.0' })).toEqual({ server: 'express-pouchdb 4.2.0' });
  });
});
