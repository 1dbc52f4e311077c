// Advances running phases, one step at a time, from the state in Postgres.
// Every worker process calls it on a timer; a per-phase advisory lock makes
// one of them do the work. Because the state is all in Postgres (and each
// action is safe to call again), any process restarted mid-phase picks the
// phase up where it stood.
import type { Context } from '../context.js';
import { tryLock } from '../db/advisory-lock.js';
import { audit } from '../db/audit.js';
import * as db from '../db/phases.js';
import { errorMessage } from '../errors.js';
import { phaseDef } from './definitions.js';

export async function advancePhases(ctx: Context): Promise<void> {
  for (const phase of await db.activePhases(ctx.db)) {
    const lock = await tryLock(ctx.db, 'mover-phase', String(phase.n));
    if (!lock) continue;
    try {
      await advance(ctx, phase.n);
    } finally {
      await lock.release();
    }
  }
}

async function advance(ctx: Context, n: number): Promise<void> {
  const def = phaseDef(n)!;
  const log = ctx.log.child({ phase: n });
  for (const step of await db.getSteps(ctx.db, n)) {
    if (step.state === 'done' || step.state === 'skipped') continue;
    if (step.state === 'failed') return db.setPhaseState(ctx.db, n, 'failed');
    if (step.state === 'waiting_confirmation') return db.setPhaseState(ctx.db, n, 'waiting');
    const stepDef = def.steps.find((s) => s.id === step.id);
    if (!stepDef) return; // a step this version does not know: leave it for the operator
    if (step.state === 'pending' && stepDef.mode === 'manual') {
      await db.updateStep(ctx.db, n, step.id, 'waiting_confirmation', { command: stepDef.command });
      log.info({ step: step.id }, 'manual step waiting for confirmation');
      return db.setPhaseState(ctx.db, n, 'waiting');
    }
    if (step.state === 'pending') {
      await db.updateStep(ctx.db, n, step.id, 'running');
      step.state = 'running';
      step.started_at = new Date();
    }
    await db.setPhaseState(ctx.db, n, 'running');
    if (!stepDef.action) {
      await db.updateStep(ctx.db, n, step.id, 'done');
      continue;
    }
    const phase = await db.getPhase(ctx.db, n);
    let result;
    try {
      result = await stepDef.action(ctx, phase, step);
    } catch (err) {
      log.error({ step: step.id, err: errorMessage(err) }, 'phase step failed');
      // A typed error may carry what the operator needs to act on (the routing preflight's problems).
      const extra = (err as { detail?: unknown }).detail;
      result = { state: 'failed' as const, detail: { error: errorMessage(err), ...(extra && typeof extra === 'object' ? extra : {}) } };
    }
    if (result.state === 'running') return db.updateStep(ctx.db, n, step.id, 'running', result.detail);
    if (result.state === 'done') {
      await db.updateStep(ctx.db, n, step.id, 'done', result.detail);
      // The phase acts for the operator who started it (darklaunch flips, pacing): on the record too.
      await audit(ctx.db, `phase ${n}`, 'phase.step_done', { phase: n, step: step.id, title: stepDef.title, detail: result.detail ?? {} });
      log.info({ step: step.id, detail: result.detail }, 'phase step done');
      continue;
    }
    await db.updateStep(ctx.db, n, step.id, 'failed', result.detail);
    return db.setPhaseState(ctx.db, n, result.state === 'halted' ? 'halted' : 'failed');
  }
  await db.setPhaseState(ctx.db, n, 'completed');
  log.info('phase completed');
}
