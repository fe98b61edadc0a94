/**
 * Export of a replica set (repository/export.ts): directory and tar stream hold the same bytes (GNU tar reads the
 * stream), every file and chunk is checked, and bad input is refused with the registry's codes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers/temp.ts';
import { exportToDirectory, exportToTar, exportToTarFile } from './export.ts';
import { fsRepository } from './repository.ts';
import { backup, packOf } from './testing.ts';
import { packPath } from './v2/pack.ts';
import { pseudoRandomBytes } from './v2/testing.ts';

const a = pseudoRandomBytes(70_000, 1);
const b = pseudoRandomBytes(3000, 2);

async function repoWithBackup() {
  const dir = tempDir('export-repo-');
  const repo = fsRepository(dir);
  await repo.init();
  await backup(repo, 'b1', { 'collection-1.wt': [a, b], 'journal/WiredTigerLog.0000000001': [b], 'storage.bson': [Buffer.alloc(0)] });
  return { dir, repo };
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Every file under `dir`: relative path → SHA-256 of its bytes (compared as text: a diff of buffers is unreadable). */
function tree(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) files[join(e.parentPath, e.name).slice(dir.length + 1)] = sha(readFileSync(join(e.parentPath, e.name)));
  }
  return files;
}

async function tarBytes(run: (out: PassThrough) => Promise<unknown>): Promise<{ bytes: Buffer; error?: unknown }> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (d: Buffer) => parts.push(d));
  let error: unknown;
  await run(out).catch((e: unknown) => (error = e));
  return { bytes: Buffer.concat(parts), error };
}

describe('export', () => {
  it('writes the dbpath into a directory and as a tar stream with the same files and bytes', async () => {
    const { repo } = await repoWithBackup();
    const out = join(tempDir('export-out-'), 'dbpath');
    expect(await exportToDirectory(repo, 'b1', 'rs0', out)).toEqual({ backupId: 'b1', cluster: 'rs0', replicaSet: 'rs0', files: 3, bytes: 76_000 });
    const files = tree(out);
    expect(files).toEqual({ 'collection-1.wt': sha(Buffer.concat([a, b])), 'journal/WiredTigerLog.0000000001': sha(b), 'storage.bson': sha(Buffer.alloc(0)) });

    const { bytes, error } = await tarBytes((s) => exportToTar(repo, 'b1', 'rs0', s));
    expect(error).toBeUndefined();
    const extracted = tempDir('export-untar-');
    const tar = spawnSync('tar', ['-x', '-C', extracted], { input: bytes });
    expect(tar.status, tar.stderr.toString()).toBe(0);
    expect(tree(extracted)).toEqual(files);

    const file = join(tempDir('export-tar-'), 'rs0.tar');
    await exportToTarFile(repo, 'b1', 'rs0', file);
    expect(sha(readFileSync(file))).toBe(sha(bytes));
  });

  it('refuses an unknown or incomplete backup, an unknown replica set and a non-empty target (unless forced)', async () => {
    const { repo } = await repoWithBackup();
    await backup(repo, 'b2', { 'x.wt': [b] }, 'failed');
    const out = tempDir('export-out-');
    await expect(exportToDirectory(repo, 'nope', 'rs0', out)).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    await expect(exportToDirectory(repo, 'b2', 'rs0', out)).rejects.toMatchObject({ code: 'BACKUP_NOT_RESTORABLE', message: /is failed/ });
    await expect(exportToDirectory(repo, 'b1', 'shard9', out)).rejects.toMatchObject({ code: 'BAD_USAGE', message: /no replica set 'shard9' \(it has rs0\)/ });
    await expect(exportToTar(repo, 'b1', 'shard9', new PassThrough())).rejects.toMatchObject({ code: 'BAD_USAGE' });

    writeFileSync(join(out, 'mine'), 'keep');
    await expect(exportToDirectory(repo, 'b1', 'rs0', out)).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY', message: /--force/ });
    await exportToDirectory(repo, 'b1', 'rs0', out, { force: true });
    expect(readFileSync(join(out, 'mine'), 'utf8')).toBe('keep');
    expect(sha(readFileSync(join(out, 'collection-1.wt')))).toBe(sha(Buffer.concat([a, b])));

    const file = join(out, 'mine');
    await expect(exportToTarFile(repo, 'b1', 'rs0', file)).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY' });
    await exportToTarFile(repo, 'b1', 'rs0', file, { force: true });
    expect(readFileSync(file).length).toBeGreaterThan(76_000);
  });

  it('fails on a damaged chunk or a file that differs from its manifest, leaving no file under its name and a truncated tar', async () => {
    const { repo } = await repoWithBackup();
    const pack = await packOf(repo.storage, a);
    const bytes = await repo.storage.readFile(packPath(pack.id));
    const blob = pack.blobs.find((x) => x.rawLength === a.length)!;
    bytes[blob.offset + 100]! ^= 0xff;
    await repo.storage.writeFile(packPath(pack.id), bytes);
    const out = tempDir('export-out-');
    await expect(exportToDirectory(repo, 'b1', 'rs0', out)).rejects.toMatchObject({ code: expect.stringMatching(/CHECKSUM_MISMATCH|REPO_CORRUPT/) });
    expect(existsSync(join(out, 'collection-1.wt'))).toBe(false);
    expect(readdirSync(out)).toEqual([]);

    const { bytes: tar, error } = await tarBytes((s) => exportToTar(repo, 'b1', 'rs0', s));
    expect(error).toBeDefined();
    const extracted = tempDir('export-untar-');
    const gnu = spawnSync('tar', ['-x', '-C', extracted], { input: tar });
    expect(gnu.status).not.toBe(0);

    // An intact repository whose manifest names another SHA-256: the whole-file check catches it.
    const { repo: repo2 } = await repoWithBackup();
    const path = 'backups/b1/rs0/manifest.json';
    const m = JSON.parse(readFileSync(join(repo2.location, path), 'utf8')) as { files: Array<{ sha256: string }> };
    m.files[0]!.sha256 = '0'.repeat(64);
    writeFileSync(join(repo2.location, path), JSON.stringify(m));
    const out2 = tempDir('export-out-');
    mkdirSync(out2, { recursive: true });
    await expect(exportToDirectory(repo2, 'b1', 'rs0', out2)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH', message: /collection-1\.wt/ });
    expect(readdirSync(out2)).toEqual([]);
  });
});
