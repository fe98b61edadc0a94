/**
 * The phase table of docs/phases.md names real code: every function a table row names is defined in the file that row
 * names (as a function, a method or an object member), and every named phase function of the backup and restore
 * workflows appears in the table.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** `[function, file]` of every table row whose header has a `function` and a `file` column. */
export function phaseRows(markdown: string): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  let fn = -1;
  let file = -1;
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) {
      fn = file = -1;
      continue;
    }
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (fn < 0) {
      fn = cells.indexOf('function');
      file = cells.indexOf('file');
      continue;
    }
    if (file < 0 || /^-+$/.test(cells[0] ?? '')) continue;
    const name = /^`([A-Za-z_$][\w$]*)`$/.exec(cells[fn] ?? '')?.[1];
    const path = /^`([\w./-]+)`$/.exec(cells[file] ?? '')?.[1];
    if (!name || !path) throw new Error(`docs/phases.md: a row without a \`function\` or \`file\`: ${line}`);
    rows.push([name, path]);
  }
  return rows;
}

/** Whether `source` defines `name`: a function declaration, a method or an object member. */
export function defines(source: string, name: string): boolean {
  return new RegExp(`(function\\s+${name}\\s*[<(]|^\\s+(async\\s+)?${name}\\s*\\(|^\\s+${name}\\s*:|const\\s+${name}\\s*=)`, 'm').test(source);
}

describe('docs/phases.md', () => {
  const rows = phaseRows(read('docs/phases.md'));

  it('parses its tables, and the check finds definitions and only those', () => {
    expect(rows.length).toBeGreaterThan(30);
    expect(defines('export async function planRestore(r: Restore) {', 'planRestore')).toBe(true);
    expect(defines('    async copyBatch(input: X) {', 'copyBatch')).toBe(true);
    expect(defines('  await planRestore(r);', 'planRestore')).toBe(false);
    expect(defines('function planRestoreAll() {}', 'planRestore')).toBe(false);
  });

  it.each(rows)('%s is in %s', (name, path) => {
    expect(defines(read(path), name), `${name} is not defined in ${path}`).toBe(true);
  });

  it("lists every phase function of the backup and restore workflows (each one's doc comment says 'Phase')", () => {
    for (const path of ['workflows/backup/cluster-backup.ts', 'workflows/backup/replica-set-backup.ts', 'workflows/restore/cluster-restore.ts']) {
      const documented = [...read(path).matchAll(/\/\*\*((?:(?!\*\/)[^])*)\*\/\s*\n(?:export )?(?:async )?function (\w+)/g)]
        .filter((m) => /^\s*\*?\s*Phase \d/.test(m[1]!))
        .map((m) => m[2]!);
      const named = new Set(rows.filter(([, p]) => p === path).map(([n]) => n));
      expect(documented.length, path).toBeGreaterThan(3);
      for (const fn of documented) expect(named.has(fn), `${path}: phase function ${fn} is not in docs/phases.md`).toBe(true);
    }
  });
});
