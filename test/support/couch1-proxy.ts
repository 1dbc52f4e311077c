// A small proxy that makes PouchDB Server look like CouchDB 1.x: it says it is
// CouchDB 1.6.1 and answers _find, _index and _explain with 404
// {"error":"not_found"}, as 1.x does (Mango came with 2.0). Everything else
// passes through. It counts the Mango requests it refused, so a test can
// show the 1.x path never asked for them. Given query parameters to drop, it
// removes them from every request, as a server that ignores them would.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from '../../dev/pouch-server.js';

export interface Couch1Proxy {
  url: string;
  /** Mango requests answered 404, by path. */
  refused: string[];
  close(): Promise<void>;
}

function dropParams(url: string, names: string[]): string {
  if (!names.length || !url.includes('?')) return url;
  const u = new URL(url, 'http://proxy');
  for (const n of names) u.searchParams.delete(n);
  return u.pathname + u.search;
}

const MANGO = /\/(_find|_index|_explain)(\/|$|\?)/;

export async function startCouch1Proxy(upstreamUrl: string, opts: { dropParams?: string[] } = {}): Promise<Couch1Proxy> {
  const upstream = new URL(upstreamUrl);
  const refused: string[] = [];
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = dropParams(req.url ?? '/', opts.dropParams ?? []);
    if (url === '/' || url.startsWith('/?'))
      return send(res, 200, { couchdb: 'Welcome', version: '1.6.1', vendor: { name: 'The Apache Software Foundation', version: '1.6.1' } });
    if (MANGO.test(url)) {
      refused.push(`${req.method} ${url}`);
      req.resume();
      return send(res, 404, { error: 'not_found', reason: 'missing' });
    }
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: url, headers: { ...req.headers, host: upstream.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    // The upstream gone (a test stops it) looks like a CouchDB that does not answer.
    out.on('error', () => {
      if (!res.headersSent) send(res, 502, { error: 'bad_gateway', reason: 'upstream unreachable' });
      else res.destroy();
    });
    req.pipe(out);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
