import type { Context } from '../context.js';
import type { PhaseRow, StepRow } from '../db/phases.js';

/** What one call of a step's action found: finished, still going (poll again), or stopped. */
export interface StepResult {
  state: 'done' | 'running' | 'failed' | 'halted';
  detail?: Record<string, unknown>;
}

export type StepAction = (ctx: Context, phase: PhaseRow, step: StepRow) => Promise<StepResult>;

export interface StepDef {
  id: string;
  title: string;
  mode: 'auto' | 'manual';
  /** For a manual step: the exact command the runbook gives. */
  command?: string;
  /** An auto step's work; for a manual step, what the fleet does once the operator confirms. */
  action?: StepAction;
}

export interface PhaseDef {
  n: number;
  title: string;
  /** What starting it again, once completed, would do: the 409's words when the start lacks "again": true. */
  again: string;
  steps: StepDef[];
}
