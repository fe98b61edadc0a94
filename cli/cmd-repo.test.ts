/**
 * `cutpoint repo check|stats` as a user runs them, on a repository in a directory. Temporal is pointed at an address
 * nothing listens on: these verbs read the repository only.
 */
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
