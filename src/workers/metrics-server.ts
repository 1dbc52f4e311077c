// A worker process's own counts (src/metrics.ts) on METRICS_PORT: workers
// serve no HTTP otherwise, and Prometheus scrapes each process.
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { registry } from '../metrics.js';

/** A worker process's own metrics on METRICS_PORT (GET /metrics), when set. */
export function serveMetrics(port: number, log: Logger): Server {
  const server = createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    try {
      res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'could not collect metrics');
      res.writeHead(500).end();
    }
  });
  server.on('error', (err) => log.error({ port, err: err.message }, 'metrics server error'));
  server.listen(port, () => log.info({ port }, 'worker metrics on /metrics'));
  return server;
}
