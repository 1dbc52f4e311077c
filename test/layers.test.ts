// A guard on the code itself: dependencies in src/ point one way, from the
// api and the workers down to the stores (docs/architecture.md, "Rules the
// tree keeps"), no import, value or type, closes a cycle, and nothing in src/
// imports the dev and test launchers of dev/ (which are not built or shipped). Imports are
// read from the sources as text (`from './x.js'`, `import('./x.js')`), so a
// type-only import counts like any other.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', 'src');

/** Top to bottom: a module may import its own layer's modules and any below, never one above. */
export const LAYERS: [string, string[]][] = [
  ['entry points', ['api/', 'workers/', 'cli/', 'boot.ts']],
  ['the runbook', ['phases/']],
  ['the run manager', ['runs/']],
  ['the job kinds and their registry', ['jobs/']],
  ['the per-org frame', ['frame/']],
  ['domain rules', ['migration/']],
  ['the context over the stores', ['context.ts', 'darklaunch.ts', 'queues.ts', 'metrics.ts']],
  ['SQL and store adapters', ['db/', 'stores/']],
  ['domain types', ['migration/types.ts']],
  ['leaves', ['config.ts', 'errors.ts', 'log.ts', 'chef-routing.ts', 'queue-names.ts']],
];

/** The layer of a file of src: the one whose prefix matches it longest (migration/types.ts sits below the rest of migration/). */
export function layerOf(file: string): number {
  let best = -1;
  let length = -1;
  LAYERS.forEach(([, prefixes], i) => {
    for (const p of prefixes) {
      if ((file === p || file.startsWith(p)) && p.length > length) [best, length] = [i, p.length];
    }
  });
  if (best < 0) throw new Error(`${file} is in no layer: add it to LAYERS in test/layers.test.ts and to docs/architecture.md`);
  return best;
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Each file of src (relative to it) with the src files it imports. */
export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    const specs = [...text.matchAll(/(?:from\s+|import\()\s*['"](\.[^'"]+)\.js['"]/g)].map((m) => m[1]);
    graph.set(
      relative(SRC, f),
      specs.map((s) => relative(SRC, resolve(dirname(f), `${s}.ts`))),
    );
  }
  return graph;
}

/** Every cycle's files, in import order (one per strongly connected group of more than one file, or a file importing itself). */
export function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string) => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(group.reverse());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('the layers of src/', () => {
  it('finds a cycle and an upward import when there is one (the guard itself can fail)', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', []],
    ]);
    expect(cycles(g)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    expect(
      cycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', []],
        ]),
      ),
    ).toEqual([]);
    expect(layerOf('api/app.ts')).toBeLessThan(layerOf('frame/org-job.ts'));
    expect(layerOf('db/runs.ts')).toBeGreaterThan(layerOf('context.ts'));
    expect(layerOf('migration/types.ts')).toBeGreaterThan(layerOf('db/runs.ts'));
    expect(layerOf('migration/compare.ts')).toBeLessThan(layerOf('db/runs.ts'));
    expect(() => layerOf('../dev/estate.ts')).toThrow(/in no layer/);
  });

  it('imports nothing from outside src/ (dev/, test/, scripts/)', () => {
    const outside = [...importGraph()].flatMap(([file, imports]) => imports.filter((t) => t.startsWith('..')).map((t) => `${file} imports ${t}`));
    expect(outside).toEqual([]);
  });

  it('has no import cycle, value or type', () => {
    expect(cycles(importGraph())).toEqual([]);
  });

  it('imports only its own layer or those below it', () => {
    const upward: string[] = [];
    for (const [file, imports] of importGraph()) {
      for (const target of imports) {
        if (layerOf(target) < layerOf(file)) upward.push(`${file} (${LAYERS[layerOf(file)][0]}) imports ${target} (${LAYERS[layerOf(target)][0]})`);
      }
    }
    expect(upward).toEqual([]);
  });
});
