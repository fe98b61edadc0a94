/**
 * Every document a comment cites is in the repository: no citation of briefing material outside the clone, of issue or
 * seed numbers a reader cannot follow; every `docs/<name>.md` cited exists, and every `section N` cited is a heading of
 * that document.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** Tracked and new text files of the repository (not ignored ones), minus recorded data. */
function sources(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
  return out
    .split('\n')
    .filter((f) => /\.(ts|mts|mjs|js|md|yml|yaml|sh)$/.test(f) || f === '.ci/run')
    .filter((f) => !f.startsWith('test/fixtures/') && !f.startsWith('bench/results/') && existsSync(new URL(f, root)));
}

/** What a citation must not look like, with why. */
export const FORBIDDEN: Array<[RegExp, string]> = [
  [/(\.\.\/)?shared\/(docs|seeds)/, 'material outside the repository'],
  [/\b(backup-cursor-spec|temporal-notes|driver-notes|pbm-notes|wave2-notes|anchors)(\.md)?\b/, 'a briefing document outside the repository'],
  [/(?<![\w/-])sim\.md\b/, 'a briefing document outside the repository (the simulator is docs/simulator.md)'],
  [/(?<![\w/.-])(interfaces|architecture)\.md\b/, 'a document without its folder (docs/…)'],
  [/\bissues? #?\d+\b/i, 'an issue number'],
  [/\bseeds? #?\d{3}\b/i, 'a seed number'],
];

/** The problems of one file's text: `line: why: excerpt`. */
export function citationProblems(path: string, text: string): string[] {
  const problems: string[] = [];
  const inDocs = path.startsWith('docs/');
  text.split('\n').forEach((line, i) => {
    for (const [re, why] of FORBIDDEN) {
      // Inside docs/ the documents link to each other by bare name.
      if (inDocs && why.startsWith('a document without its folder')) continue;
      if (re.test(line)) problems.push(`${path}:${i + 1}: ${why}: ${line.trim().slice(0, 120)}`);
    }
  });
  return problems;
}

/** Headings of a markdown document as section numbers (`## 4.` → `4`, `### 4.3 …` → `4.3`). */
function sectionsOf(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s/gm)].map((m) => m[1]!));
}

describe('citations', () => {
  it('flags what it should, and not what it should not', () => {
    expect(citationProblems('a.ts', '// see ../shared/docs/x.md and sim.md')).toHaveLength(2);
    expect(citationProblems('a.ts', '// interfaces.md section 2')).toHaveLength(1);
    expect(citationProblems('a.ts', '// (issue 11) and seed 002')).toHaveLength(2);
    expect(citationProblems('a.ts', '// docs/interfaces.md section 2; docs/simulator.md; seedMember; 3 issues')).toEqual([]);
    expect(citationProblems('docs/x.md', 'see [interfaces.md](interfaces.md)')).toEqual([]);
  });

  it('no file cites material outside the repository, an issue or a seed number', () => {
    const files = sources();
    expect(files.length).toBeGreaterThan(100);
    const problems = files.flatMap((f) => (f === 'docs/citations.test.ts' ? [] : citationProblems(f, read(f))));
    expect(problems).toEqual([]);
  });

  it('every cited docs/ file exists and every cited section is one of its headings', () => {
    const missing: string[] = [];
    for (const f of sources()) {
      if (f === 'docs/citations.test.ts') continue;
      for (const m of read(f).matchAll(/docs\/([\w-]+\.md)(?: section (\d+(?:\.\d+)*))?/g)) {
        const doc = `docs/${m[1]}`;
        if (!existsSync(new URL(doc, root))) missing.push(`${f}: ${doc} does not exist`);
        else if (m[2] && !sectionsOf(read(doc)).has(m[2])) missing.push(`${f}: ${doc} has no section ${m[2]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
