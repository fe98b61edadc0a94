/**
 * `cutpoint repo check|stats` as a user runs them, on a repository in a directory. Temporal is pointed at an address
 * nothing listens on: these verbs read the repository only.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../test/helpers/cli.ts';
import { tempDir } from '../test/helpers/temp.ts';
import { fsRepository } from '../repository/repository.ts';
import { backup, packOf } from '../repository/testing.ts';
import { packPath } from '../repository/v2/pack.ts';
import { pseudoRandomBytes } from '../repository/v2/testing.ts';

const noTemporal = { TEMPORAL_ADDRESS: '127.0.0.1:1' };

describe('cutpoint repo', () => {
  it('check --json exits 0 on a clean repository and 1 naming a missing pack; stats --json has its fields', async () => {
    const dir = tempDir('repo-check-');
    const repo = fsRepository(dir);
    await repo.init();
    const a = pseudoRandomBytes(3000, 1);
    await backup(repo, 'b1', { 'a.wt': [a, Buffer.alloc(2000)] });
    await backup(repo, 'b2', { 'b.wt': [a] });

    const clean = await runCli(['repo', 'check', '--repo', dir, '--read-data', '--json'], noTemporal);
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({
      repo: dir,
      format: 'cutpoint/v2',
      checked: { packs: 1, indexes: 1, chunks: 2, backups: 2 },
      readData: true,
      problems: [],
      garbage: [],
    });

    const stats = await runCli(['repo', 'stats', '--repo', dir, '--json'], noTemporal);
    expect(stats.code).toBe(0);
    const s = JSON.parse(stats.stdout) as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(['backups', 'chunks', 'compressionRatio', 'dedupRatio', 'encrypted', 'format', 'logicalBytes', 'storedBytes'].sort());
    expect(s).toMatchObject({ format: 'cutpoint/v2', encrypted: false, backups: 2, chunks: 2, logicalBytes: 8000, dedupRatio: 8000 / 5000 });

    const pack = await packOf(repo.storage, a);
    await repo.storage.remove(packPath(pack.id));
    const damaged = await runCli(['repo', 'check', '--repo', dir, '--json'], noTemporal);
    expect(damaged.code).toBe(1);
    expect(JSON.parse(damaged.stdout)).toMatchObject({ problems: [{ kind: 'pack-missing', object: packPath(pack.id), backups: ['b1', 'b2'] }] });

    const human = await runCli(['repo', 'check', '--repo', dir], noTemporal);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/DAMAGED pack-missing .*\n\s+needed by backups: b1, b2/);

    const notRepo = await runCli(['repo', 'check', '--repo', tempDir('empty-')], noTemporal);
    expect(notRepo.code).toBe(2);
  });
});

describe('cutpoint repo (encrypted)', () => {
  it('init --encrypt, list --offline with a missing, wrong and right password, key add / passwd / remove', async () => {
    const dir = tempDir('repo-enc-');
    const files = tempDir('repo-pw-');
    const pw = (name: string, text: string) => {
      writeFileSync(join(files, name), `${text}\n`);
      return join(files, name);
    };
    const first = pw('first', 'first password');
    const second = pw('second', 'second password');
    const noPassword = { ...noTemporal, CUTPOINT_REPO_PASSWORD: '', CUTPOINT_REPO_PASSWORD_FILE: '' };

    const refused = await runCli(['repo', 'init', '--encrypt', '--repo', dir], noPassword);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/REPO_PASSWORD_MISSING|no password/);
    const init = await runCli(['repo', 'init', '--encrypt', '--repo', dir, '--password-file', first, '--json'], noPassword);
    expect(init.code).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ encrypted: true, format: 'cutpoint/v2' });
    await backup(fsRepository(dir, { password: () => 'first password' }), 'b1', { 'a.wt': [pseudoRandomBytes(3000, 1)] });

    const missing = await runCli(['list', '--offline', '--repo', dir], noPassword);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/encrypted and no password was given/);
    const wrong = await runCli(['list', '--offline', '--repo', dir], { ...noPassword, CUTPOINT_REPO_PASSWORD: 'nope' });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/wrong password/);
    expect(wrong.stderr).not.toContain('nope');
    const listed = await runCli(['list', '--offline', '--repo', dir, '--json'], { ...noPassword, CUTPOINT_REPO_PASSWORD: 'first password' });
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ backups: [{ id: 'b1' }] });

    const added = await runCli(['repo', 'key', 'add', '--repo', dir, '--password-file', first, '--new-password-file', second], noPassword);
    expect(added.code).toBe(0);
    const passwd = await runCli(['repo', 'key', 'passwd', '--repo', dir, '--password-file', second, '--new-password-file', pw('third', 'third password')], noPassword);
    expect(passwd.code).toBe(0);
    const keys = await runCli(['repo', 'key', 'list', '--repo', dir, '--json'], { ...noPassword, CUTPOINT_REPO_PASSWORD_FILE: first });
    const list = (JSON.parse(keys.stdout) as { keys: Array<{ id: string; current: boolean }> }).keys;
    expect(list).toHaveLength(2);
    expect(list.filter((k) => k.current)).toHaveLength(1);
    const other = list.find((k) => !k.current)!.id;
    // The first password removes the third's key; then its own is the last one and stays.
    expect((await runCli(['repo', 'key', 'remove', other.slice(0, 12), '--repo', dir, '--password-file', first], noPassword)).code).toBe(0);
    const last = await runCli(['repo', 'key', 'remove', list.find((k) => k.current)!.id, '--repo', dir, '--password-file', first], noPassword);
    expect(last.code).toBe(2);
    expect(last.stderr).toMatch(/last key/);
    const stats = await runCli(['repo', 'stats', '--repo', dir, '--json', '--password-file', first], noPassword);
    expect(JSON.parse(stats.stdout)).toMatchObject({ encrypted: true, backups: 1 });
  }, 60_000);

  it('init --compression none: chunks stored as they are (a raw zstd frame each), read back and checked as any; a bad value refused', async () => {
    const bad = await runCli(['repo', 'init', '--compression', 'lz4', '--repo', tempDir('repo-bad-')], noTemporal);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--compression must be zstd or none, got 'lz4'");

    const dir = tempDir('repo-plain-');
    const init = await runCli(['repo', 'init', '--compression', 'none', '--repo', dir, '--json'], noTemporal);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ compression: 'none', encrypted: false });
    const zeros = Buffer.alloc(64 * 1024);
    await backup(fsRepository(dir), 'b1', { 'a.wt': [zeros] });
    const info = await packOf(fsRepository(dir).storage, zeros);
    // zstd would shrink 64 KiB of zeros to a few bytes; stored, the blob is the chunk and 12 bytes of headers.
    expect(info.blobs[0]!.length).toBe(zeros.length + 12);
    const check = await runCli(['repo', 'check', '--repo', dir, '--read-data', '--json'], noTemporal);
    expect(check.code, check.stdout).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ checked: { chunks: 1 }, problems: [] });
  });
});
