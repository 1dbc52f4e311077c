// The mover CLI on runs (src/cli/runs.ts) and on the mistakes it keeps an
// operator from: a phase 1 without orgs, a completed phase started again only
// with --again, failures paged with a hint when there are more, a retry of
// the failed orgs, and --json failures as JSON with the same exit code. End
// state of Postgres (org states, runs) asserted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunFailures } from '../src/cli/replies.js';
import { runCli } from './support/cli.js';
import { createHarness, type Harness } from './support/harness.js';

let h: Harness;
let url: string;
const T = 'phase_2_migration';

beforeAll(async () => {
  h = await createHarness('cli-runs');
  await h.seed([{ name: 'cr-good' }, { name: 'cr-bad-0', noDatabase: true }, { name: 'cr-bad-1', noDatabase: true }]);
  h.startWorkers({ phaseTickMs: 200 });
  url = await h.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => h?.close());

const mover = (args: string[]) => runCli(url, args);
const stateOf = async (name: string) =>
  (
    await h.ctx.db.query(
      `SELECT s.state::text AS state, p.run_id::text AS run_id FROM org_migration_state s LEFT JOIN mover.org_progress p USING (migration_type, org_id) WHERE s.org_name = $1`,
      [name],
    )
  ).rows[0];

describe('mover, keeping an operator from easy mistakes', () => {
  it('says how to give phase 1 its orgs, and starts nothing without them', async () => {
    const r = await mover(['phase', 'start', '1']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('mover: phase 1 migrates the orgs you name: give them with --orgs <name...> or --orgs-file <file> (one a line)');
    expect((await h.api('GET', '/phases/1')).body.state).toBe('not_started');
  });

  it('runs phase 1, then refuses it again without --again (exit 3; --json gives the refusal as JSON), and runs it with it', async () => {
    const start = await mover(['phase', 'start', '1', '--orgs', 'cr-good', 'cr-bad-0', 'cr-bad-1', '--concurrency', '2', '--watch']);
    expect(start.code).toBe(0);
    expect(start.out).toContain('settings it changes: concurrency 2');
    expect(start.out).toMatch(/phase 1: .* — completed/);
    const refused = await mover(['phase', 'start', '1', '--orgs', 'cr-good']);
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/^mover: 409 phase_completed: phase 1 has completed; it would refresh the account snapshot/);
    const json = await mover(['--json', 'phase', 'start', '1', '--orgs', 'cr-good']);
    expect(json.code).toBe(3);
    expect(json.err).toBe('');
    expect(JSON.parse(json.out)).toMatchObject({ status: 409, error: 'phase_completed', message: expect.stringContaining('"again": true') });
    const again = await mover(['phase', 'start', '1', '--orgs', 'cr-good', '--again', '--watch']);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/phase 1 started again/);
    expect(again.out).toContain('settings it changes: none');
  }, 90_000);
});

describe('mover orgs with --file', () => {
  it('says, for each line skipped, why: a comment, not captured, or in another state than the move takes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-orgs-'));
    const file = join(dir, 'orgs.txt');
    writeFileSync(file, '# tonight\ncr-good\n\nnobody\n');
    const r = await mover(['orgs', 'hold', '--file', file]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toEqual([
      'updated 0',
      '  line 1 (# tonight): skipped: a comment',
      '  line 2 (cr-good): skipped: it is completed, not ready',
      '  line 4 (nobody): skipped: not captured for phase_2_migration',
    ]);
    expect((await stateOf('cr-good')).state).toBe('completed');
  });
});

describe('mover run', () => {
  it('lists the runs, pages the failed orgs with a hint for the rest, and retries them', async () => {
    const list = await mover(['run', 'list']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^run \d+ +completed 3\/3 orgs, 2 failed/m);
    const page = await mover(['run', 'failures', '--limit', '1']);
    expect(page.code).toBe(0);
    expect(page.out).toMatch(/^run \d+: migrate 2$/m);
    expect(page.out).toMatch(/^ {2}cr-bad-0 {2}at migrate \(data\) /m);
    expect(page.out).not.toContain('cr-bad-1');
    expect(page.out).toContain('more: mover run failures phase_2_migration --cursor cr-bad-0 (or --all)');
    const all = await mover(['--json', 'run', 'failures', '--all', '--limit', '1']);
    expect((JSON.parse(all.out) as RunFailures).orgs.map((o) => o.org_name)).toEqual(['cr-bad-0', 'cr-bad-1']);
    const before = await stateOf('cr-bad-1');
    const retry = await mover(['run', 'retry', '--failed']);
    expect(retry.code).toBe(0);
    expect(retry.out).toMatch(/^retry run \d+: 2 orgs$/m);
    const runId = retry.out.match(/retry run (\d+)/)![1];
    const watch = await mover(['run', 'status', '--watch']);
    expect(watch.out).toMatch(/completed/);
    // Their database is still missing: failed again, now in the retry's run.
    expect(await stateOf('cr-bad-1')).toEqual({ state: 'failed', run_id: runId });
    expect(before.run_id).not.toBe(runId);
    // An earlier run, followed by its id: it is over, so the watch ends at once on its own figures.
    const earlier = await mover(['run', 'status', '--watch', '--run', before.run_id]);
    expect(earlier.out).toMatch(/3\/3 orgs .* completed/);
    const status = await mover(['run', 'status']);
    expect(status.out).toMatch(/ended: every org it took was processed: 0 completed, 2 failed/);
    // A run that is over: its own rate over its length, and no ETA to guess.
    expect(status.out).toMatch(/2\/2 orgs {2}\d+\.\d orgs\/s {2}ETA done {2}failed 2 .* completed/);
    const none = await mover(['run', 'retry', 'cr-good']);
    expect(none.code).toBe(3);
    expect(none.err).toContain('not_retryable');
    // Phase 1's run and the retry's: phase 1 again found nothing ready (cr-good is completed) and made no run.
    expect((await h.ctx.db.query(`SELECT count(*)::int AS n FROM mover.migration_runs WHERE migration_type = $1`, [T])).rows[0].n).toBe(2);
  }, 90_000);
});
