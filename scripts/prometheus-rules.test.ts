/**
 * The alert rules shipped in monitoring/: valid for Prometheus (`promtool check rules`), and each alert fires exactly
 * when its unit tests say (`promtool test rules monitoring/cutpoint-rules.test.yml`). promtool is Debian's
 * `prometheus` package, which `npm test` installs when it is missing (scripts/ensure-deps.mjs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dir = fileURLToPath(new URL('../monitoring/', import.meta.url));
const PROMTOOL = '/usr/bin/promtool';

const promtool = (...args: string[]) => spawnSync(PROMTOOL, args, { cwd: dir, encoding: 'utf8' });

describe('alert rules', () => {
  it('pass promtool check and every promtool rule unit test', () => {
    expect(existsSync(PROMTOOL), `${PROMTOOL} is missing: install Debian's prometheus package (apt-get install prometheus; npm test does as root)`).toBe(true);
    const check = promtool('check', 'rules', 'cutpoint-rules.yml');
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/SUCCESS: 5 rules found/);
    const test = promtool('test', 'rules', 'cutpoint-rules.test.yml');
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toMatch(/SUCCESS/);
  });
});
