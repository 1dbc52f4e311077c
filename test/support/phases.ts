// Driving phases through the API in tests.
import nano from 'nano';
import { expect } from 'vitest';
import type { PhaseView } from '../../src/cli/replies.js';
import { TYPES } from '../../src/stores/couch-docs.js';
import { waitFor, type Harness } from './harness.js';

export const getPhase = async (h: Harness, n: number) => (await h.api('GET', `/phases/${n}`)).body;
/** Step `id` of the phase; a phase without it is a failed test. */
export function stepOf(p: PhaseView, id: string) {
  const step = p.steps.find((s) => s.id === id);
  if (!step) throw new Error(`phase ${p.phase} has no step ${id}`);
  return step;
}

/** The phase's steps as last read, for a timeout's message: which step it stood on, and why. */
const seen = (p: PhaseView | undefined) => (p ? JSON.stringify({ state: p.state, steps: p.steps?.filter((s) => s.state !== 'pending') }) : 'nothing read');

export function waitPhase(h: Harness, n: number, states: string[], timeoutMs = 60_000) {
  let last: PhaseView | undefined;
  return waitFor(
    () => `phase ${n} in ${states.join(',')}; last seen ${seen(last)}`,
    async () => {
      last = await getPhase(h, n);
      return states.includes(last.state) ? last : null;
    },
    timeoutMs,
  );
}

/** Waits until step `id` of phase `n` is in `state`; the phase as last read. */
export function waitStep(h: Harness, n: number, id: string, state: string, timeoutMs = 30_000) {
  let last: PhaseView | undefined;
  return waitFor(
    () => `step ${id} ${state}; phase ${n} last seen ${seen(last)}`,
    async () => {
      last = await getPhase(h, n);
      return stepOf(last, id).state === state ? last : null;
    },
    timeoutMs,
  );
}

export async function confirmWhenWaiting(h: Harness, n: number, id: string, by = 'alice') {
  await waitStep(h, n, id, 'waiting_confirmation');
  const res = await h.api('POST', `/phases/${n}/steps/${id}/confirm`, { by, note: `did ${id}` });
  expect(res.status).toBe(200);
}

/** What runbook step 2.3's script does, out of band. */
export async function deletePrecreatedFromCouch(h: Harness) {
  const db = nano(h.couchdb.url).use<Record<string, unknown>>(h.couchdb.accountDb);
  const { docs } = await db.find({ selector: { json_class: TYPES.organization, full_name: 'Pre-created' } });
  await db.bulk({ docs: docs.map((d) => ({ ...d, _deleted: true })) });
}

/** Phases 1 and 2 start to end, confirming every manual step. */
export async function runPhases1And2(h: Harness, phase1Orgs: string[]) {
  expect((await h.api('POST', '/phases/1/start', { orgs: phase1Orgs, concurrency: 4 })).status).toBe(202);
  expect((await waitPhase(h, 1, ['completed', 'failed', 'halted'])).state).toBe('completed');
  expect((await h.api('POST', '/phases/2/start', {})).status).toBe(202);
  await confirmWhenWaiting(h, 2, '2.1');
  await confirmWhenWaiting(h, 2, '2.3');
  await deletePrecreatedFromCouch(h);
  await confirmWhenWaiting(h, 2, '2.7');
  await confirmWhenWaiting(h, 2, '2.8');
  expect((await waitPhase(h, 2, ['completed', 'failed', 'halted'])).state).toBe('completed');
}
