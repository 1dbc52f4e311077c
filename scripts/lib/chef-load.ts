// Chef's live traffic against the org databases, for bench:live: an open
// loop at a fixed offered rate (a request is sent when its time comes, whether
// or not the ones before it have answered, so a slow CouchDB shows as latency
// instead of as fewer requests), each request timed from the moment it was
// due. The mix is Chef's own: reads of containers, groups and nodes, node
// saves (create, then update), a short _all_docs listing now and then, and a
// few container and group saves, which a migrating org takes in at
// check_writes (docs/domain.md, section 6).
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { SeededOrg } from '../../dev/estate.js';
import { percentile } from './samplers.js';

/** One request: when it was due (epoch ms), how long until its answer, its kind, and its HTTP status (0: no answer). */
export interface Sample {
  at: number;
  ms: number;
  op: Op;
  status: number;
}

type Op = 'get_object' | 'get_node' | 'put_node' | 'all_docs' | 'put_object';

/** Shares of the mix: mostly reads, node saves, a few container and group saves. */
const MIX: Record<Op, number> = { get_object: 0.4, get_node: 0.2, put_node: 0.3, all_docs: 0.08, put_object: 0.02 };
/** Past this many requests waiting for an answer, a due request is counted dropped instead of sent (the sockets stay bounded). */
const MAX_IN_FLIGHT = 2000;
const TIMEOUT_MS = 10_000;

export interface ChefLoad {
  samples: Sample[];
  /** Requests that were due while MAX_IN_FLIGHT were waiting: not sent. */
  dropped(): number;
  /** What the last request that got no answer failed with, if any did. */
  lastError(): string | undefined;
  /** Resolves once every request due before `before` (epoch ms) has its answer (or its timeout). */
  settled(before: number): Promise<void>;
  /** Stops sending and cuts off the requests still waiting. */
  stop(): Promise<void>;
}

/** What the load's thread (chef-load-thread.ts) sends, and what it is told. */
export type ThreadMessage =
  | { kind: 'samples'; samples: Sample[]; dropped: number; lastError?: string; loopDelayMaxMs: number }
  | { kind: 'done'; id: number }
  | { kind: 'failed'; id: number; error: string };
/** What the bench asks of the load thread; the thread's answer names its id. */
type ThreadAsk = { kind: 'settled'; before: number } | { kind: 'stop' };
export type ThreadOrder = ThreadAsk & { id: number };

/**
 * startChefLoad on a thread of its own, so nothing this thread does can
 * delay a request (chef-load-thread.ts). Its samples arrive every 100 ms;
 * settled() and stop() wait for the thread's last ones.
 */
export function startChefLoadThread(couchUrl: string, orgs: SeededOrg[], rps: number): ChefLoad & { loopDelayMaxMs(): number } {
  const thread = new Worker(new URL('./chef-load-thread.mjs', import.meta.url), { workerData: { couchUrl, orgs, rps } });
  const samples: Sample[] = [];
  let dropped = 0;
  let lastError: string | undefined;
  let loopDelayMaxMs = 0;
  let next = 0;
  const waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  thread.on('message', (m: ThreadMessage) => {
    if (m.kind === 'samples') {
      for (const s of m.samples) samples.push(s);
      ({ dropped, lastError, loopDelayMaxMs } = m);
    } else {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.kind === 'done') w?.resolve();
      else w?.reject(new Error(`live traffic thread: ${m.error}`));
    }
  });
  thread.on('error', (err) => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
    lastError = `live traffic thread failed: ${err.message}`;
  });
  const ask = (order: ThreadAsk) =>
    new Promise<void>((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      thread.postMessage({ ...order, id });
    });
  let stopped: Promise<void> | undefined;
  return {
    samples,
    dropped: () => dropped,
    lastError: () => lastError,
    loopDelayMaxMs: () => loopDelayMaxMs,
    settled: (before) => ask({ kind: 'settled', before }),
    stop: () => (stopped ??= ask({ kind: 'stop' }).finally(() => void thread.terminate())),
  };
}

/** Starts sending `rps` requests a second to the orgs' databases at `couchUrl` until stopped. */
export function startChefLoad(couchUrl: string, orgs: SeededOrg[], rps: number): ChefLoad {
  const url = new URL(couchUrl);
  const lib = url.protocol === 'https:' ? https : http;
  // Idle sockets closed after 4 s, before the server's own keep-alive timeout (Node's 5 s): else a request can go out on one the server is closing.
  const agent = new lib.Agent({ keepAlive: true, maxSockets: Infinity, timeout: 4000 });
  const auth =
    url.username || url.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
      : undefined;
  const request = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = lib.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method,
          path,
          timeout: TIMEOUT_MS,
          headers: { ...(auth ? { authorization: auth } : {}), ...(payload ? { 'content-type': 'application/json' } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, json: chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {} });
            } catch (err) {
              reject(new Error(`${method} ${path} answered ${res.statusCode} with no JSON: ${(err as Error).message}`));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(payload);
    });

  // What the generator wrote itself, so it reads and updates real documents: each org's nodes and their revisions.
  const nodes = new Map<string, Map<string, string>>();
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
  const chooseOp = (): Op => {
    let r = Math.random();
    for (const [op, share] of Object.entries(MIX) as [Op, number][]) if ((r -= share) < 0) return op;
    return 'get_object';
  };

  /** One op: its requests, each timed from `due` (the first) or from when it was sent (a save's second request). */
  async function perform(op: Op, due: number): Promise<void> {
    const org = pick(orgs);
    const db = `/chef_${org.guid}`;
    const known = nodes.get(org.guid) ?? new Map<string, string>();
    nodes.set(org.guid, known);
    const timed = async (kind: Op, from: number, method: string, path: string, body?: unknown) => {
      try {
        const res = await request(method, path, body);
        samples.push({ at: from, ms: Math.round(Date.now() - from), op: kind, status: res.status });
        return res;
      } catch (err) {
        // A request that got no answer is a sample too (status 0): the slowest kind there is.
        samples.push({ at: from, ms: Math.round(Date.now() - from), op: kind, status: 0 });
        if (!stopped) lastError = (err as Error).message;
        return undefined;
      }
    };
    if (op === 'get_object') await timed(op, due, 'GET', `${db}/${pick(org.expected).id}`);
    else if (op === 'all_docs') await timed(op, due, 'GET', `${db}/_all_docs?limit=50`);
    else if (op === 'get_node' && known.size) await timed(op, due, 'GET', `${db}/${pick([...known.keys()])}`);
    else if (op === 'get_node' || op === 'put_node') {
      // A new node until the org has a few, then a save of one of them with the revision the last save answered.
      const id = known.size < 5 ? `node-${randomBytes(6).toString('hex')}` : pick([...known.keys()]);
      const rev = known.get(id);
      const res = await timed('put_node', due, 'PUT', `${db}/${id}`, {
        ...(rev ? { _rev: rev } : {}),
        'couchrest-type': 'Chef::Node',
        name: id,
        automatic: { ohai_time: Date.now() / 1000 },
      });
      if (res?.status === 201 && typeof res.json.rev === 'string') known.set(id, res.json.rev);
    } else {
      // A container or group save: read it for its revision, write it back changed, as Chef does.
      const got = await timed('get_object', due, 'GET', `${db}/${pick(org.expected).id}`);
      if (got?.status === 200) await timed(op, Date.now(), 'PUT', `${db}/${String(got.json._id)}`, { ...got.json, live_write: Date.now() });
    }
  }

  const samples: Sample[] = [];
  let lastError: string | undefined;
  let inFlight = 0;
  let dropped = 0;
  let sent = 0;
  const started = Date.now();
  /** Requests waiting for an answer, each with when it was due. */
  const pending = new Map<Promise<void>, number>();
  let stopped: Promise<void> | undefined;
  // A tick every 5 ms sends every request due since the last one, each stamped with its own due time.
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * rps) / 1000);
    for (; sent < due; sent++) {
      if (inFlight >= MAX_IN_FLIGHT) {
        dropped++;
        continue;
      }
      inFlight++;
      const at = started + (sent * 1000) / rps;
      const p = perform(chooseOp(), at).finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.set(p, at);
    }
  }, 5);

  return {
    samples,
    dropped: () => dropped,
    lastError: () => lastError,
    async settled(before) {
      await Promise.all([...pending].filter(([, at]) => at < before).map(([p]) => p));
    },
    stop() {
      // Whatever is still waiting is cut off: what was measured is in the samples already.
      stopped ??= (async () => {
        clearInterval(timer);
        agent.destroy();
        await Promise.all(pending.keys());
      })();
      return stopped;
    },
  };
}

export interface LoadSummary {
  requests: number;
  p50: number;
  p99: number;
  max: number;
  /** Answers other than 2xx, 404 and 409 (a read of a node not there yet, a save that lost a race), and requests with no answer. */
  errors: number;
}

/** The samples due in [from, to): their latency p50/p99/max (ms) and errors. */
export function summarize(samples: Sample[], from: number, to: number): LoadSummary {
  const these = samples.filter((s) => s.at >= from && s.at < to);
  const ms = these.map((s) => s.ms);
  return {
    requests: these.length,
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    max: ms.length ? ms.reduce((a, b) => Math.max(a, b)) : NaN,
    errors: these.filter((s) => s.status === 0 || (s.status >= 300 && s.status !== 404 && s.status !== 409)).length,
  };
}

/** p99 (ms) of each `everyMs` window in [from, to). */
export function windowP99s(samples: Sample[], from: number, to: number, everyMs = 5000): number[] {
  const out: number[] = [];
  for (let t = from; t < to; t += everyMs) out.push(summarize(samples, t, Math.min(to, t + everyMs)).p99);
  return out;
}
