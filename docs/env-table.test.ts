/**
 * The README's table of environment variables against the code: every variable the code reads (`env.X`,
 * `env['X']`, `env?.X`, and the names built from a prefix or handed to a reader function) has a row, and every row
 * names a variable the code reads. Variables of the platform itself (PATH, HOME, GOFLAGS for `go install`, …) are
 * not cutpoint's and are not listed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** Set by the platform or passed through to other programs; not cutpoint's to document. */
const PLATFORM = new Set(['PATH', 'HOME', 'GOFLAGS', 'GOBIN', 'CGO_ENABLED', 'NODE_ENV', 'CI', 'TERM', 'VITEST']);

/** The variable names a source file reads. */
export function variablesRead(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\benv\??\.([A-Z][A-Z0-9_]+)\b/g)) names.add(m[1]!);
  for (const m of text.matchAll(/\benv\[\s*['"`]([A-Z][A-Z0-9_]+)['"`]\s*\]/g)) names.add(m[1]!);
  // Readers handed a name: readPem('TEMPORAL_TLS_CERT', env), and the credential prefix's `${prefix}_USERNAME`.
  for (const m of text.matchAll(/\breadPem\(\s*'([A-Z][A-Z0-9_]+)'/g)) names.add(m[1]!);
  const prefix = /prefix \?\? '([A-Z][A-Z0-9_]+)'/.exec(text)?.[1];
  if (prefix) for (const m of text.matchAll(/env\[`\$\{prefix\}(_[A-Z]+)`\]/g)) names.add(prefix + m[1]!);
  return [...names].filter((n) => !PLATFORM.has(n));
}

/** The variables of the README's "Environment variables" table. */
function documented(): string[] {
  const readme = read('README.md');
  const start = readme.indexOf('## Environment variables');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 3));
  return [...section.matchAll(/^\| ((?:`[A-Z][A-Z0-9_]+`(?:, )?)+) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([A-Z0-9_]+)`/g)].map((x) => x[1]!));
}

describe('environment variables', () => {
  it('finds reads of every form', () => {
    const code = "const a = process.env.CUTPOINT_A; env?.B_B; env['C_C']; readPem('D_D', env); const p = ref.prefix ?? 'PRE'; env[`${prefix}_USERNAME`]; env.PATH";
    expect(variablesRead(code).sort()).toEqual(['B_B', 'CUTPOINT_A', 'C_C', 'D_D', 'PRE_USERNAME']);
  });

  it('the README table lists exactly the variables the code reads', () => {
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts', '*.mjs', '*.js'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && !f.startsWith('docs/') && !f.includes('node_modules/'));
    const read_ = new Map<string, string[]>();
    for (const f of files) for (const v of variablesRead(read(f))) read_.set(v, [...(read_.get(v) ?? []), f]);
    const table = documented();
    expect(table.length).toBeGreaterThan(10);
    expect([...read_.keys()].filter((v) => !table.includes(v)).map((v) => `${v} (read in ${read_.get(v)!.join(', ')})`), 'read but not in the README table').toEqual([]);
    expect(table.filter((v) => !read_.has(v)), 'in the README table but read nowhere').toEqual([]);
  });
});
