/**
 * No import circle in the repository: the relative imports of every first-party source file (api/, cli/, common/,
 * lib/, repository/, activities/, workers/, workflows/, scripts/, sim/, test/, docs/, ...; `import type`, re-exports and
 * dynamic `import()` included) form a graph without cycles. When two modules need the same definition, it lives in a
 * small module both import (e.g. cli/temporal-optional.ts, sim/node/types.ts, sim/cluster/topology.ts).
 *
 * A unit test although it sits in test/: vitest.config.ts names it in the unit project (no Temporal server needed).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = /\.(ts|mts|js|mjs)$/;

/** Every source file under `dir`, leaving out node_modules and hidden entries (.git, .cache, ...). */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'node_modules' || e.name.startsWith('.')) return [];
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return SOURCE.test(e.name) ? [p] : [];
  });
}

/** The files a module imports by relative path (static, type-only, re-export and dynamic `import()`), resolved. */
function importsOf(file: string, text: string): string[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles.map((i) => i.fileName).filter((s) => s.startsWith('./') || s.startsWith('../')).map((s) => resolve(dirname(file), s));
}

/** The import graph of `sources` (path → text), edges only between files of the set. */
function importGraph(sources: Map<string, string>): Map<string, string[]> {
  return new Map([...sources].map(([file, text]) => [file, importsOf(file, text).filter((t) => sources.has(t))]));
}

/** One cycle per strongly connected component with more than one file (or a file importing itself), as a path a → … → a. */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = new Set<string>();
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      component.add(w);
      if (w === v) break;
    }
    if (component.size > 1 || graph.get(v)!.includes(v)) found.push(pathBack(graph, v, component));
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return found;
}

/** A shortest import path from `start` back to itself inside its component (breadth first). */
function pathBack(graph: Map<string, string[]>, start: string, component: Set<string>): string[] {
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const between: string[] = [];
        for (let u = v; u !== start; u = parent.get(u)!) between.unshift(u);
        return [start, ...between, start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

describe('the cycle finder', () => {
  const graphOf = (files: Record<string, string>) => importGraph(new Map(Object.entries(files).map(([f, t]) => [resolve('/x', f), t])));
  const names = (found: string[][]) => found.map((c) => c.map((p) => relative('/x', p)));

  it('finds a circle closed by a type-only import, a re-export or a dynamic import, and none in a tree', () => {
    expect(names(cycles(graphOf({ 'a.ts': "import { b } from './b.ts';", 'b.ts': "import type { A } from './a.ts';" })))).toEqual([['a.ts', 'b.ts', 'a.ts']]);
    expect(
      names(cycles(graphOf({ 'n/a.ts': "export { c } from '../c.ts';", 'c.ts': "const d = await import('./d/e.ts');", 'd/e.ts': "import x from '../n/a.ts';" }))),
    ).toEqual([['n/a.ts', 'c.ts', 'd/e.ts', 'n/a.ts']]);
    expect(cycles(graphOf({ 'a.ts': "import './b.ts'; import './c.ts';", 'b.ts': "import './c.ts';", 'c.ts': "import 'mongodb';" }))).toEqual([]);
  });
});

describe('the repository', () => {
  it('has no import circle (type imports included)', () => {
    const files = sourceFiles(ROOT);
    const folders = new Set(files.map((f) => relative(ROOT, f).split(sep)[0]));
    for (const folder of ['api', 'cli', 'common', 'lib', 'repository', 'activities', 'workers', 'workflows', 'scripts', 'sim', 'test']) {
      expect(folders, `${folder}/ is searched`).toContain(folder);
    }
    const found = cycles(importGraph(new Map(files.map((f) => [f, readFileSync(f, 'utf8')]))));
    expect(found.map((c) => c.map((p) => relative(ROOT, p)).join(' → '))).toEqual([]);
  });
});
