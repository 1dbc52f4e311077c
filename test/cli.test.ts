// The mover CLI, spawned as an operator runs it, against a real api (the
// harness's, listening) and worker fleet: a phase started and watched to its
// end, a manual step confirmed, a 409, a 404, a bad token, --json.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditPage } from '../src/cli/replies.js';
import { runCli } from './support/cli.js';
import { createHarness, type Harness } from './support/harness.js';

let h: Harness;
let url: string;

beforeAll(async () => {
  h = await createHarness('cli');
  await h.seed([{ name: 'cli-a' }, { name: 'cli-b' }, { name: 'cli-c' }]);
  h.startWorkers({ phaseTickMs: 200 });
  url = await h.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => h?.close());

const mover = (args: string[], env: Record<string, string> = {}) => runCli(url, args, { env });

describe('mover (the CLI)', () => {
  it('runs phase 1 and watches it to its end, in plain lines when stdout is not a terminal', async () => {
    const start = await mover(['phase', 'start', '1', '--orgs', 'cli-a', 'cli-b', 'cli-c', '--concurrency', '2']);
    expect(start).toMatchObject({ code: 0, err: '' });
    expect(start.out).toMatch(/phase 1 started/);
    const watch = await mover(['phase', 'watch', '1']);
    expect(watch.code).toBe(0);
    expect(watch.out).not.toContain('\r');
    expect(watch.out).toMatch(/phase 1: .* — completed/);
    expect(watch.out).toMatch(/\[x\] 1\.4 .*\(3\/3 orgs, 0 failed\)/);
    // Phase 1 says how old the estate survey is: none here.
    expect(watch.out).toContain('estate survey: none yet (mover survey start --watch)');
    expect((await mover(['phase', 'show', '1'])).out).toContain('estate survey: none yet');
    const org = await mover(['--json', 'orgs', 'show', 'cli-b']);
    expect(JSON.parse(org.out).states.phase_2_migration.state).toBe('completed');
  }, 60_000);

  it('shows the manual step waiting with its command, confirms it, and answers 409 with exit 3', async () => {
    expect((await mover(['phase', 'start', '2'])).code).toBe(0);
    const waiting = await mover(['phase', 'watch', '2']);
    expect(waiting.code).toBe(0);
    expect(waiting.out).toMatch(
      /\[\?\] 2\.1 .*\n\s+waiting for you: knife ssh role:opscode-account 'sudo \/etc\/init.d\/opscode-org-creator stop'\n\s+then: mover phase confirm 2 2\.1 \[--note "\.\.\."\] +\(with the one shared MOVER_API_TOKEN, add --by <your name>\)/,
    );
    const again = await mover(['phase', 'start', '2']);
    expect(again.code).toBe(3);
    expect(again.err.trim().split('\n')).toEqual([expect.stringMatching(/^mover: 409 phase_running: phase 2 is waiting/)]);
    const confirm = await mover(['phase', 'confirm', '2', '2.1', '--by', 'alice', '--note', 'org-creator stopped']);
    expect(confirm.code).toBe(0);
    expect(confirm.out).toMatch(/step 2\.1 confirmed by alice/);
    const audit = await mover(['--json', 'audit', '--limit', '5']);
    expect((JSON.parse(audit.out) as AuditPage).entries.some((e) => e.action === 'phase.confirm' && e.actor === 'alice')).toBe(true);
  }, 60_000);

  it('exits 4 on an unknown org, 1 on a bad token, 2 on a usage error: one line naming what was wrong', async () => {
    const ghost = await mover(['orgs', 'show', 'ghost-org']);
    expect(ghost.code).toBe(4);
    expect(ghost.err.trim()).toMatch(/^mover: 404 unknown_org: unknown org "ghost-org"$/);
    const bad = await mover(['run', 'status'], { MOVER_API_TOKEN: 'wrong' });
    expect(bad.code).toBe(1);
    expect(bad.err.trim()).toBe('mover: 401 unauthorized: the api refused MOVER_API_TOKEN');
    const usage = await mover(['run', 'concurrency', 'many']);
    expect(usage.code).toBe(2);
    expect(usage.err.trim()).toBe('mover: not a whole number: "many"');
    const status = await mover(['--json', 'run', 'status']);
    expect(JSON.parse(status.out)).toMatchObject({ state: 'completed', orgs_completed: 3, objects_failed: 0 });
  }, 60_000);
});
