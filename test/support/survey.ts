// What the survey tests share: the state of every store the survey must leave
// as it was, and waiting for a survey to end.
import nano from 'nano';
import type { SurveyView } from '../../src/cli/replies.js';
import { waitFor, type Harness } from './harness.js';

/** Everything the survey must leave as it was: every document and seq of the estate, Chef's three tables, every dl_* key. */
export async function estateState(h: Harness, guids: string[]) {
  const server = nano(h.couchdb.url);
  const couch: Record<string, unknown> = {};
  for (const db of [h.couchdb.accountDb, ...guids.map((g) => `chef_${g}`)]) {
    const info = await server.db.get(db).catch((e: { statusCode?: number }) => {
      if (e.statusCode === 404) return null;
      throw e;
    });
    couch[db] = info && { seq: info.update_seq, docs: (await server.use(db).list({ include_docs: true })).rows };
  }
  const rows = async (sql: string) => (await h.ctx.db.query(sql)).rows.map((r) => r.t);
  const dl = h.ctx.darklaunchRedis;
  const redis: Record<string, unknown> = {};
  for (const key of (await dl.keys('dl_*')).sort()) {
    const type = await dl.type(key);
    redis[key] = { type, value: type === 'hash' ? await dl.hgetall(key) : type === 'string' ? await dl.get(key) : await dl.dump(key) };
  }
  return {
    couch,
    containers: await rows(`SELECT t::text AS t FROM containers t ORDER BY 1`),
    groups: await rows(`SELECT t::text AS t FROM "groups" t ORDER BY 1`),
    states: await rows(`SELECT t::text AS t FROM org_migration_state t ORDER BY 1`),
    redis,
  };
}

/** Waits for the latest survey to end; its GET /survey. */
export async function surveyEnd(h: Harness, timeoutMs = 60_000): Promise<SurveyView> {
  return waitFor(
    'the survey to end',
    async () => {
      const s = (await h.api('GET', '/survey')).body;
      return s.state !== 'running' && s.state !== 'not_started' ? s : null;
    },
    timeoutMs,
  );
}
