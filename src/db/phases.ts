// The phases and their steps (SQL operations only; what a step does is in src/phases).
import type { Db, DbClient } from '../stores/postgres.js';
import { StateConflictError } from '../errors.js';
import { inTransaction } from '../stores/postgres.js';

type Q = Db | DbClient;
export type PhaseState = 'not_started' | 'running' | 'waiting' | 'completed' | 'failed' | 'halted';
export type StepState = 'pending' | 'running' | 'waiting_confirmation' | 'done' | 'failed' | 'skipped';

export interface PhaseRow {
  n: number;
  state: PhaseState;
  params: Record<string, unknown>;
  started_by: string | null;
  started_at: Date | null;
  finished_at: Date | null;
}

export interface StepRow {
  phase: number;
  id: string;
  position: number;
  title: string;
  kind: 'auto' | 'manual';
  state: StepState;
  started_at: Date | null;
  finished_at: Date | null;
  detail: Record<string, unknown>;
  confirmed_by: string | null;
  confirmed_at: Date | null;
}

export async function getPhase(q: Q, n: number): Promise<PhaseRow> {
  return (await q.query(`SELECT * FROM mover.phases WHERE n = $1`, [n])).rows[0];
}

export async function activePhases(q: Q): Promise<PhaseRow[]> {
  return (await q.query(`SELECT * FROM mover.phases WHERE state IN ('running', 'waiting') ORDER BY n`)).rows;
}

export async function getSteps(q: Q, n: number): Promise<StepRow[]> {
  return (await q.query(`SELECT * FROM mover.phase_steps WHERE phase = $1 ORDER BY position`, [n])).rows;
}

/**
 * Starts a phase: fresh (steps laid anew) when it never ran or completed,
 * resumed from its failed step when it failed or halted. 409 while it runs or
 * while the phase it needs has not completed.
 */
export async function startPhase(
  db: Db,
  n: number,
  params: Record<string, unknown>,
  actor: string,
  steps: { id: string; title: string; mode: 'auto' | 'manual' }[],
  again: { asked: boolean; would: string },
): Promise<{ phase: PhaseRow; resumed: boolean; again: boolean }> {
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(`SELECT * FROM mover.phases WHERE n <= $1 ORDER BY n FOR UPDATE`, [n]);
    const phase = rows.find((r) => r.n === n) as PhaseRow;
    const needed = rows.find((r) => r.n === n - 1) as PhaseRow | undefined;
    if (phase.state === 'running' || phase.state === 'waiting') throw new StateConflictError(`phase ${n} is ${phase.state}`, 'phase_running');
    if (needed && needed.state !== 'completed')
      throw new StateConflictError(`phase ${n} needs phase ${n - 1} completed first (it is ${needed.state})`, 'phase_not_ready');
    // A completed phase runs again only when asked in so many words: a mis-click must not redo a phase.
    // A completed dry run was a rehearsal (phase 4): the real run after it needs no word.
    const rehearsed = phase.params?.dry_run === true || phase.params?.dryRun === true;
    const isAgain = phase.state === 'completed';
    if (isAgain && !again.asked && !rehearsed)
      throw new StateConflictError(
        `phase ${n} has completed; ${again.would}. To run it again, send "again": true (mover phase start ${n} --again)`,
        'phase_completed',
      );
    const resumed = phase.state === 'failed' || phase.state === 'halted';
    if (resumed) {
      // The failed step starts over: a new run, not the halted one (its detail named that run).
      await c.query(
        `UPDATE mover.phase_steps SET state = 'pending', started_at = NULL, finished_at = NULL, detail = jsonb_build_object('previous_attempt', detail)
         WHERE phase = $1 AND state = 'failed'`,
        [n],
      );
    } else {
      await c.query(`DELETE FROM mover.phase_steps WHERE phase = $1`, [n]);
      await c.query(
        `INSERT INTO mover.phase_steps (phase, id, position, title, kind)
         SELECT $1, id, pos, title, kind FROM unnest($2::text[], $3::int[], $4::text[], $5::text[]) AS t(id, pos, title, kind)`,
        [n, steps.map((s) => s.id), steps.map((_, i) => i), steps.map((s) => s.title), steps.map((s) => s.mode)],
      );
    }
    const updated = await c.query(
      `UPDATE mover.phases SET state = 'running', params = $2, started_by = $3, started_at = CASE WHEN $4 THEN started_at ELSE now() END, finished_at = NULL
       WHERE n = $1 RETURNING *`,
      [n, JSON.stringify(params), actor, resumed],
    );
    return { phase: updated.rows[0], resumed, again: isAgain };
  });
}

export async function setPhaseState(q: Q, n: number, state: PhaseState): Promise<void> {
  await q.query(
    `UPDATE mover.phases SET state = $2, finished_at = CASE WHEN $2 IN ('completed', 'failed', 'halted') THEN now() ELSE NULL END WHERE n = $1 AND state <> $2`,
    [n, state],
  );
}

/** Moves a step; detail is merged into what it had. */
export async function updateStep(q: Q, n: number, id: string, state: StepState, detail: Record<string, unknown> = {}): Promise<void> {
  await q.query(
    `UPDATE mover.phase_steps SET state = $3, detail = detail || $4::jsonb,
       started_at = COALESCE(started_at, CASE WHEN $3 <> 'pending' THEN now() END),
       finished_at = CASE WHEN $3 IN ('done', 'failed', 'skipped') THEN now() ELSE NULL END
     WHERE phase = $1 AND id = $2`,
    [n, id, state, JSON.stringify(detail)],
  );
}

/** waiting_confirmation → running (or done), recording who and when; false unless it was waiting. */
export async function confirmStep(q: Q, n: number, id: string, by: string, note: string | undefined, next: 'running' | 'done'): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE mover.phase_steps SET state = $3, confirmed_by = $4, confirmed_at = now(),
       detail = detail || jsonb_build_object('note', $5::text),
       finished_at = CASE WHEN $3 = 'done' THEN now() ELSE NULL END
     WHERE phase = $1 AND id = $2 AND state = 'waiting_confirmation'`,
    [n, id, next, by, note ?? null],
  );
  return rowCount === 1;
}
