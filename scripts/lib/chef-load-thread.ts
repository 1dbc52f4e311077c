// The live traffic of chef-load.ts on a thread of its own (bench:live): the
// bench's main thread polls run status, samples processes and collects
// garbage, and on the same event loop any of that delays the requests due
// then, which an open loop counts as CouchDB's latency. The thread sends its
// samples over every 100 ms, and the most its own loop was ever held up.
import { parentPort, workerData } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startChefLoad, type ThreadMessage, type ThreadOrder } from './chef-load.js';

const { couchUrl, orgs, rps } = workerData as { couchUrl: string; orgs: Parameters<typeof startChefLoad>[1]; rps: number };
const port = parentPort!;
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
const load = startChefLoad(couchUrl, orgs, rps);
let sent = 0;
const flush = () => {
  const samples = load.samples.slice(sent);
  sent += samples.length;
  const msg: ThreadMessage = { kind: 'samples', samples, dropped: load.dropped(), lastError: load.lastError(), loopDelayMaxMs: delay.max / 1e6 };
  port.postMessage(msg);
};
const timer = setInterval(flush, 100);
port.on('message', (order: ThreadOrder) => {
  const done = order.kind === 'settled' ? load.settled(order.before) : load.stop().then(() => clearInterval(timer));
  void done.then(
    () => {
      flush();
      port.postMessage({ kind: 'done', id: order.id } satisfies ThreadMessage);
    },
    (err: Error) => port.postMessage({ kind: 'failed', id: order.id, error: err.message } satisfies ThreadMessage),
  );
});
