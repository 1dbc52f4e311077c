// A guard on the code itself: no error may vanish without a trace. An empty
// catch, a `.catch(() => {})`, an error listener that does nothing, or a bare
// Promise.allSettled whose failures nobody reads is refused here, so writing
// one by accident fails the suite. Handle the error (log it, rethrow it, or
// use settleAll from src/log.ts) instead.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SWALLOWERS: [string, RegExp][] = [
  ['empty catch block', /catch\s*(\(\s*\w*\s*\))?\s*\{\s*\}/],
  ['catch block holding only a comment', /catch\s*(\(\s*\w*\s*\))?\s*\{\s*(\/\*[^*]*\*\/|\/\/[^\n]*)\s*\}/],
  ['.catch that does nothing', /\.catch\(\s*(\(\s*\w*\s*\)|\w+)\s*=>\s*(\{\s*\}|undefined|null|void 0)\s*\)/],
  ['error listener that does nothing', /\.on\(\s*['"]error['"]\s*,\s*\(\s*\w*\s*\)\s*=>\s*\{\s*\}\s*\)/],
  ['Promise.allSettled whose failures are not read (use settleAll)', /^\s*await\s+Promise\.allSettled\(/m],
];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

export function swallowedErrors(source: string): string[] {
  return SWALLOWERS.filter(([, re]) => re.test(source)).map(([what]) => what);
}

describe('no swallowed errors in src/ and dev/', () => {
  it('finds each pattern it refuses (the guard itself can fail)', () => {
    expect(swallowedErrors('try { x(); } catch {}')).toEqual(['empty catch block']);
    expect(swallowedErrors('try { x(); } catch (e) { /* fine */ }')).toEqual(['catch block holding only a comment']);
    expect(swallowedErrors('p.catch(() => {})')).toEqual(['.catch that does nothing']);
    expect(swallowedErrors('p.catch((e) => undefined)')).toEqual(['.catch that does nothing']);
    expect(swallowedErrors("pool.on('error', () => {})")).toEqual(['error listener that does nothing']);
    expect(swallowedErrors('  await Promise.allSettled(xs);')).toEqual(['Promise.allSettled whose failures are not read (use settleAll)']);
    expect(swallowedErrors('const r = await Promise.allSettled(xs);')).toEqual([]);
    expect(swallowedErrors("p.catch((e) => log.warn({ err: e }, 'x'))")).toEqual([]);
    expect(swallowedErrors('try { x(); } catch (err) { client.release(true); }')).toEqual([]);
  });

  it('holds for every file under src/ and dev/', () => {
    const found = ['src', 'dev']
      .flatMap((dir) => files(join(import.meta.dirname, '..', dir)))
      .flatMap((f) => swallowedErrors(readFileSync(f, 'utf8')).map((what) => `${f}: ${what}`));
    expect(found).toEqual([]);
  });
});
