// Pure rules, no stores: how a CouchDB document becomes a SQL row, and how the
// server's welcome decides Mango.
import { describe, expect, it } from 'vitest';
import { planObjects, UNKNOWN_REQUESTER } from '../src/migration/plan-objects.js';
import { docType, fromWelcome, TYPES } from '../src/stores/couch.js';

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
  it("names a group by its groupname and a container by its containername, never by name", () => {
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
    const map = new Map([[id(9), authz(9)], [id(5), authz(5)], [id(6), authz(6)], [id(7), authz(6)], ['x'.repeat(37), authz(1)]]);
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

describe('the server welcome', () => {
  it('decides Mango for CouchDB by its version, and leaves other servers to be asked', () => {
    expect(fromWelcome({ couchdb: 'Welcome', version: '1.6.1' })).toEqual({ server: 'CouchDB 1.6.1', mango: false });
    expect(fromWelcome({ couchdb: 'Welcome', version: '2.3.1', features: [] })).toEqual({ server: 'CouchDB 2.3.1', mango: true });
    expect(fromWelcome({ couchdb: 'Welcome', version: '3.3.3' })).toEqual({ server: 'CouchDB 3.3.3', mango: true });
    expect(fromWelcome({ 'express-pouchdb': 'Welcome!', version: '4.2.0' })).toEqual({ server: 'express-pouchdb 4.2.0' });
  });
});
