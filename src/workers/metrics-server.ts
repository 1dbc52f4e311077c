// A worker process's own counts (src/metrics.ts) on METRICS_PORT: workers
// serve no HTTP otherwise, and Prometheus scrapes each process.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { registry } from '../metrics.js';

/** A worker process's own metrics on METRICS_PORT (GET /metrics), when set. */
export function serveMetrics(port: number, log: Logger): Server {
  const respond = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    try {
      // Collected before the head is written, so a failure can still answer 500.
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(text);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'could not collect metrics');
      res.writeHead(500).end();
    }
  };
  // respond logs its own failure; the server does not wait on a handler's promise.
  const server = createServer((req, res) => void respond(req, res));
  server.on('error', (err) => log.error({ port, err: err.message }, 'metrics server error'));
  server.listen(port, () => log.info({ port }, 'worker metrics on /metrics'));
  return server;
}
