// How an org's containers and groups are read for the copy (Couch.copyOrgObjects):
// a small org database in one request that also says the update_seq it was
// read at; a larger one paged on (Mango, or _all_docs on CouchDB 1.x); and a
// server that does not return update_seq with _all_docs has the seq read on
// its own before the documents. Against PouchDB Server and the 1.x proxy.
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedEstate, addDocs, hex32, type SeededOrg } from '../dev/estate.js';
import { startPouchServer, type PouchServer } from '../dev/pouch-server.js';
import { createLogger } from '../src/log.js';
import { Couch } from '../src/stores/couch.js';
import { InfrastructureError, OrgDataError } from '../src/errors.js';
import { orgDatabaseName } from '../src/stores/couch-docs.js';
import { couchRequestsByOp, roundTrips, type CouchOp } from '../src/stores/round-trips.js';
import { startCouch1Proxy, type Couch1Proxy } from './support/couch1-proxy.js';

const PAGE = 10;
let pouch: PouchServer;
const proxies: Couch1Proxy[] = [];
let small: SeededOrg;
let large: SeededOrg;

const couchAt = (url: string) => new Couch(url, { graceMs: 0, log: createLogger('silent', 'couch-read-test') }, 'opscode_account', PAGE);
const dbSeq = async (org: SeededOrg) => String((await (await fetch(`${pouch.url}/${orgDatabaseName(org.guid)}`)).json()).update_seq);
const ids = (docs: { _id: string }[]) => docs.map((d) => d._id).sort();
const expectedIds = (org: SeededOrg) => org.expected.map((e) => e.id).sort();

/** What one call cost in CouchDB requests, and what it returned. */
async function copyCounted(couch: Couch, org: SeededOrg) {
  await couch.capabilities(); // asked once per process; not what is measured here
  const before = roundTrips().couchdb;
  const copy = await couch.copyOrgObjects(org.guid);
  return { ...copy, requests: roundTrips().couchdb - before };
}

beforeAll(async () => {
  pouch = await startPouchServer();
  // 5 containers + 3 groups; the large one also holds 25 other documents, so it spans pages of 10.
  [small, large] = await seedEstate(pouch.url, [
    { name: 'small', containers: 5, groups: 3 },
    { name: 'large', containers: 5, groups: 3, otherDocs: 25 },
  ]);
}, 60_000);
afterAll(async () => {
  for (const p of proxies) await p.close();
  await pouch?.stop();
});

describe('with Mango (PouchDB Server)', () => {
  it('reads a small org database in one request, with the seq it read it at', async () => {
    const couch = couchAt(pouch.url);
    const copy = await copyCounted(couch, small);
    expect(copy.requests).toBe(1);
    expect(ids(copy.docs)).toEqual(expectedIds(small));
    expect(copy.seq).toBe(await dbSeq(small));
  });

  it('reads a larger one on with Mango, each object once', async () => {
    const couch = couchAt(pouch.url);
    const copy = await copyCounted(couch, large);
    expect(copy.requests).toBe(2);
    expect(ids(copy.docs)).toEqual(expectedIds(large));
    expect(copy.seq).toBe(await dbSeq(large));
  });

  it('gives the seq from before a write that lands after the read', async () => {
    const couch = couchAt(pouch.url);
    const [org] = await seedEstate(pouch.url, [{ name: `late-${hex32().slice(0, 6)}`, containers: 2, groups: 1 }]);
    const copy = await couch.copyOrgObjects(org.guid);
    await addDocs(pouch.url, orgDatabaseName(org.guid), [{ _id: hex32(), 'couchrest-type': 'Mixlib::Authorization::Models::Group', groupname: 'late' }]);
    expect(await couch.updateSeq(orgDatabaseName(org.guid))).not.toBe(copy.seq);
    const { changes } = await couch.changesSince(orgDatabaseName(org.guid), copy.seq);
    expect(changes.map((c) => c.doc?.groupname)).toEqual(['late']);
  });
});

describe('on CouchDB 1.x (the proxy)', () => {
  it('pages a larger org database with _all_docs, never asking for Mango', async () => {
    const proxy = await startCouch1Proxy(pouch.url);
    proxies.push(proxy);
    const couch = couchAt(proxy.url);
    const copy = await copyCounted(couch, large);
    // 33 documents in pages of 10: four requests.
    expect(copy.requests).toBe(4);
    expect(ids(copy.docs)).toEqual(expectedIds(large));
    expect(copy.seq).toBe(await dbSeq(large));
    expect(proxy.refused).toEqual([]);
  });

  it('on a server that does not return update_seq with _all_docs, reads the seq first, then the documents, and remembers', async () => {
    const proxy = await startCouch1Proxy(pouch.url, { dropParams: ['update_seq'] });
    proxies.push(proxy);
    const couch = couchAt(proxy.url);
    const first = await copyCounted(couch, small);
    // The page asked with the seq (which did not come), the seq on its own, the page again.
    expect(first.requests).toBe(3);
    expect(ids(first.docs)).toEqual(expectedIds(small));
    expect(first.seq).toBe(await dbSeq(small));
    const again = await copyCounted(couch, large);
    expect(again.requests).toBe(1 + 4);
    expect(ids(again.docs)).toEqual(expectedIds(large));
    expect(again.seq).toBe(await dbSeq(large));
  });
});

describe('requests', () => {
  it('ask for uncompressed answers (nano asks for gzip unless told otherwise)', async () => {
    let seen: string | undefined;
    const server = createServer((req, res) => {
      seen = req.headers['accept-encoding'];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"update_seq":"7-x"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const couch = couchAt(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      expect(await couch.updateSeq('chef_x')).toBe('7-x');
      expect(seen).toBe('identity');
    } finally {
      server.close();
    }
  });
});

describe('the count of requests', () => {
  /** Forwards to PouchDB Server, counting the requests that reach it. */
  async function countingProxy(): Promise<{ url: string; received: () => number; close: () => void }> {
    let received = 0;
    const target = new URL(pouch.url);
    const server = createServer((req, res) => {
      received++;
      const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received: () => received, close: () => server.close() };
  }
  const spentSince = (before: Partial<Record<CouchOp, number>>) =>
    Object.fromEntries(
      Object.entries(couchRequestsByOp())
        .map(([op, n]) => [op, n - (before[op as CouchOp] ?? 0)])
        .filter(([, n]) => n),
    );

  it('counts every request that reaches the server once, by what it is, none unlabelled', async () => {
    const proxy = await countingProxy();
    try {
      const couch = couchAt(proxy.url);
      const before = couchRequestsByOp();
      const total = roundTrips().couchdb;
      await couch.capabilities();
      const copy = await couch.copyOrgObjects(small.guid);
      await couch.changesSince(orgDatabaseName(small.guid), copy.seq);
      await couch.updateSeq(orgDatabaseName(small.guid));
      await couch.ping();
      await couch.ensureAuthzLookup();
      await couch.findAuthJoins([hex32()]);
      for await (const page of couch.pages('opscode_account')) expect(page.length).toBeGreaterThan(0);
      expect(spentSince(before)).toEqual({
        server_info: 1,
        mango_probe: 1,
        org_read: 1,
        org_changes: 1,
        org_seq: 1,
        health: 1,
        authz_index: 1,
        authz_lookup: 1,
        account_read: 1,
      });
      expect(roundTrips().couchdb - total).toBe(9);
      expect(proxy.received()).toBe(9);
    } finally {
      proxy.close();
    }
  });

  it('counts a request sent again through an outage each time it is sent', async () => {
    let answered = 0;
    const server = createServer((_req, res) => {
      // Unavailable once (a CouchDB restarting), then the answer.
      res.writeHead(answered++ ? 200 : 503, { 'content-type': 'application/json' });
      res.end('{"update_seq":"7-x"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const couch = new Couch(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { graceMs: 5000, log: createLogger('silent', 'couch-read-test') });
      const before = couchRequestsByOp();
      expect(await couch.updateSeq('chef_x')).toBe('7-x');
      expect(spentSince(before)).toEqual({ org_seq: 2 });
      expect(answered).toBe(2);
    } finally {
      server.close();
    }
  });
});

describe('the account database missing', () => {
  it("is the fleet's problem, not an org's: its look-ups fail as infrastructure, on both paths", async () => {
    const proxy = await startCouch1Proxy(pouch.url);
    proxies.push(proxy);
    for (const url of [pouch.url, proxy.url]) {
      const couch = new Couch(url, { graceMs: 0, log: createLogger('silent', 'couch-read-test') }, 'no_such_account_db', PAGE);
      const lookUp = couch.findAuthJoins([hex32()]);
      await expect(lookUp).rejects.toBeInstanceOf(InfrastructureError);
      await expect(lookUp).rejects.toThrow(/no_such_account_db/);
      // An org database that is missing stays the org's own problem.
      await expect(couch.copyOrgObjects(hex32())).rejects.toBeInstanceOf(OrgDataError);
    }
    // Nothing was made on the way.
    expect((await fetch(`${pouch.url}/no_such_account_db`)).status).toBe(404);
  });
});
