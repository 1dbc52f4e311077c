// The mover CLI run as an operator runs it, against an api at `url`: bin/mover.js
// (the build where there is one, else the sources), or the sources themselves.
import { spawn } from 'node:child_process';
import { TOKEN } from './harness.js';

export function runCli(
  url: string,
  args: string[],
  opts: { env?: Record<string, string>; fromSource?: boolean } = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const entry = opts.fromSource ? ['--import', 'tsx', 'src/cli/main.ts'] : ['bin/mover.js'];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...entry, ...args], {
      env: { PATH: process.env.PATH ?? '', MOVER_API_URL: url, MOVER_API_TOKEN: TOKEN, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}
