import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CutpointError, exitCodeFor } from '../common/errors.ts';
import { type ClusterManifest, layout, type ReplicaSetManifest } from '../common/manifest.ts';
import { CorruptFileError } from './errors.ts';
import { FaultyStorage } from './faulty-storage.ts';
import type { FileListInput } from './file-list.ts';
import { FsStorage } from './fs-storage.ts';
import { MemoryStorage } from './memory-storage.ts';
import { type BatchFile, fsRepository, Repository, type ReplicaSetMeta } from './repository.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function errorOf(p: Promise<unknown>): Promise<CutpointError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CutpointError);
    return err as CutpointError;
  }
  throw new Error('expected a CutpointError');
}

function clusterManifest(id: string, over: Partial<ClusterManifest> = {}): ClusterManifest {
  return {
    format: 'cutpoint/v2',
    id,
    cluster: 'rs0',
    status: 'running',
    startedAt: '2025-01-02T03:04:05.000Z',
    finishedAt: null,
    commonTimestamp: null,
    balancerWasEnabled: null,
    bytes: 0,
    replicaSets: [{ name: 'rs0', configServer: false, node: 'localhost:27017' }],
    ...over,
  };
}

function rsManifest(over: Partial<ReplicaSetManifest> = {}): ReplicaSetManifest {
  return {
    format: 'cutpoint/v2',
    name: 'rs0',
    node: 'localhost:27017',
    backupId: '7d3c4a1e-0000-4000-8000-000000000001',
    dbpath: '/data/db',
    oplogStart: { t: 1, i: 1 },
    oplogEnd: { t: 2, i: 3 },
    checkpointTimestamp: { t: 2, i: 1 },
    extendedTo: { t: 2, i: 3 },
    files: [
      { path: 'collection-0-1.wt', size: 4096, sha256: sha('a'), kind: 'data' },
      { path: 'journal/WiredTigerLog.0000000001', size: 100, sha256: sha('b'), kind: 'journal' },
    ],
    ...over,
  };
}

const META: ReplicaSetMeta = {
  node: 'localhost:27017',
  backupId: 'uuid-1',
  dbpath: '/data/db',
  oplogStart: { t: 1, i: 1 },
  oplogEnd: { t: 5, i: 1 },
  checkpointTimestamp: { t: 4, i: 1 },
  extendedTo: { t: 5, i: 1 },
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutpoint-repo-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Repository: init and open', () => {
  it('init creates cutpoint.json in a new directory; init and open then read it', async () => {
    const repo = fsRepository(join(dir, 'repo'));
    const created = await repo.init(new Date('2025-05-06T07:08:09.000Z'));
    expect(created).toMatchObject({ format: 'cutpoint/v2', createdAt: '2025-05-06T07:08:09.000Z', chunkHash: 'sha256', compression: { type: 'zstd' } });
    expect(await repo.init()).toEqual(created);
    expect(await repo.open()).toEqual(created);
    expect(JSON.parse(await repo.storage.readFile('cutpoint.json').then(String))).toEqual(created);
  });

  it('open refuses a directory that is not a repository, naming it', async () => {
    for (const root of [join(dir, 'missing'), dir]) {
      const err = await errorOf(fsRepository(root).open());
      expect(err.code).toBe('REPO_UNUSABLE');
      expect(err.message).toContain(`${root} is not a cutpoint repository`);
      expect(exitCodeFor(err.code)).toBe(2);
    }
  });

  it('init refuses a non-empty directory that is not a repository', async () => {
    await writeFile(join(dir, 'precious.txt'), 'do not touch');
    const err = await errorOf(fsRepository(dir).init());
    expect(err.code).toBe('REPO_UNUSABLE');
    expect(err.message).toContain(dir);
    expect(err.message).toContain('precious.txt');
  });

  it('a repository of another format is refused with a clear error', async () => {
    await writeFile(join(dir, 'cutpoint.json'), JSON.stringify({ format: 'cutpoint/v9', createdAt: '2030-01-01T00:00:00Z' }));
    for (const op of [(r: Repository) => r.init(), (r: Repository) => r.open()]) {
      const err = await errorOf(op(fsRepository(dir)));
      expect(err.code).toBe('REPO_UNUSABLE');
      expect(err.message).toContain("format 'cutpoint/v9' is not supported");
      expect(err.message).toContain(join(dir, 'cutpoint.json'));
    }
  });

  it('a v1 repository opens for reading, but no backup is written into it: REPO_UNUSABLE saying to start a v2 one', async () => {
    await writeFile(join(dir, 'cutpoint.json'), JSON.stringify({ format: 'cutpoint/v1', createdAt: '2026-01-01T00:00:00Z' }));
    expect((await fsRepository(dir).open()).format).toBe('cutpoint/v1');
    expect(await fsRepository(dir).format()).toBe('cutpoint/v1');
    const err = await errorOf(fsRepository(dir).initWritable());
    expect(err.code).toBe('REPO_UNUSABLE');
    expect(err.message).toContain(`${dir} is a cutpoint/v1 repository`);
    expect(err.message).toMatch(/Start a v2 repository in a new, empty location \(--repo\); this one stays listable, verifiable and restorable/);
    // A new location becomes a v2 repository.
    expect((await fsRepository(join(dir, 'new')).initWritable()).format).toBe('cutpoint/v2');
  });

  it('a v2 cutpoint.json without its chunking parameters is refused, naming the field', async () => {
    await writeFile(join(dir, 'cutpoint.json'), JSON.stringify({ format: 'cutpoint/v2', createdAt: '2026-01-01T00:00:00Z' }));
    const err = await errorOf(fsRepository(dir).open());
    expect(err).toMatchObject({ code: 'REPO_CORRUPT', field: 'chunkHash' });
  });

  it('a corrupted cutpoint.json is reported with its path', async () => {
    await writeFile(join(dir, 'cutpoint.json'), '{"format": "cutpoint/v1",');
    const err = await errorOf(fsRepository(dir).open());
    expect(err).toBeInstanceOf(CorruptFileError);
    expect(err.code).toBe('REPO_CORRUPT');
    expect(err.message).toContain(join(dir, 'cutpoint.json'));
  });

  it('a repository path under a regular file: REPO_UNUSABLE naming the path', async () => {
    await writeFile(join(dir, 'plain'), 'a regular file');
    const root = join(dir, 'plain', 'repo');
    for (const op of [(r: Repository) => r.init(), (r: Repository) => r.open()]) {
      const err = await errorOf(op(fsRepository(root)));
      expect(err.code).toBe('REPO_UNUSABLE');
      expect(err.message).toContain(root);
      expect(err.message).toMatch(/ENOTDIR/);
    }
  });
});

describe('Repository: manifests', () => {
  it('cluster and replica-set manifests round trip (unknown fields kept)', async () => {
    const repo = new Repository(new MemoryStorage());
    const m = { ...clusterManifest('b1'), futureField: { x: 1 } };
    await repo.writeClusterManifest(m);
    expect(await repo.readClusterManifest('b1')).toEqual(m);
    await repo.writeReplicaSetManifest('b1', rsManifest());
    expect(await repo.readReplicaSetManifest('b1', 'rs0')).toEqual(rsManifest());
    expect(await repo.readClusterManifest('b2')).toBeUndefined();
    expect(await repo.readReplicaSetManifest('b1', 'rs1')).toBeUndefined();
    expect(await repo.storage.list('')).toEqual([layout.clusterManifest('b1'), layout.replicaSetManifest('b1', 'rs0')]);
  });

  it('a corrupted manifest is reported with its path and the offending field', async () => {
    const s = new MemoryStorage('corrupt');
    const repo = new Repository(s);
    await repo.writeClusterManifest(clusterManifest('b1'));
    await repo.writeReplicaSetManifest('b1', rsManifest());

    await s.writeFile('backups/b1/manifest.json', '{"format": "cutpoint/v1", "id": ');
    let err = await errorOf(repo.readClusterManifest('b1'));
    expect(err.code).toBe('REPO_CORRUPT');
    expect(err.message).toContain('memory:corrupt/backups/b1/manifest.json');
    expect(err.message).toMatch(/not valid JSON/);

    const bad = JSON.parse(JSON.stringify(clusterManifest('b1'))) as Record<string, unknown>;
    (bad.replicaSets as Array<Record<string, unknown>>)[0]!.configServer = 'yes';
    await s.writeFile('backups/b1/manifest.json', JSON.stringify(bad));
    err = await errorOf(repo.readClusterManifest('b1'));
    expect(err).toMatchObject({ code: 'REPO_CORRUPT', field: 'replicaSets[0].configServer' });
    expect(err.message).toContain('backups/b1/manifest.json');
    expect(err.message).toContain('replicaSets[0].configServer');

    const rs = rsManifest();
    rs.files[1]!.sha256 = 'XYZ';
    await s.writeFile('backups/b1/rs0/manifest.json', JSON.stringify(rs));
    err = await errorOf(repo.readReplicaSetManifest('b1', 'rs0'));
    expect(err).toMatchObject({ code: 'REPO_CORRUPT', field: 'files[1].sha256' });
    expect(err.message).toContain('backups/b1/rs0/manifest.json');

    await s.writeFile('backups/b1/rs0/manifest.json', JSON.stringify(rsManifest({ files: [{ path: '../../etc/passwd', size: 1, sha256: sha('x'), kind: 'data' }] })));
    err = await errorOf(repo.readReplicaSetManifest('b1', 'rs0'));
    expect(err).toMatchObject({ code: 'REPO_CORRUPT', field: 'files[0].path' });

    await s.writeFile('backups/b1/manifest.json', JSON.stringify(clusterManifest('b1', { format: 'cutpoint/v3' })));
    err = await errorOf(repo.readClusterManifest('b1'));
    expect(err).toMatchObject({ code: 'REPO_CORRUPT', field: 'format' });
  });

  it('refuses to write an invalid manifest (nothing is written)', async () => {
    const repo = new Repository(new MemoryStorage());
    const err = await errorOf(repo.writeClusterManifest(clusterManifest('b1', { bytes: -5 })));
    expect(err.code).toBe('INTERNAL');
    expect(await repo.storage.list('')).toEqual([]);
    await expect(repo.writeClusterManifest(clusterManifest('../b1'))).rejects.toThrow(/backup id/);
    await expect(repo.writeReplicaSetManifest('b1', rsManifest({ name: '.work' }))).rejects.toThrow(/replica set name/);
  });

  it('complete is the commit point: refused until every replica-set manifest is durable', async () => {
    const repo = new Repository(new MemoryStorage());
    const done = clusterManifest('b1', { status: 'complete', finishedAt: '2025-01-02T04:00:00.000Z', commonTimestamp: { t: 2, i: 3 }, bytes: 4196 });
    await repo.writeClusterManifest(clusterManifest('b1'));
    const err = await errorOf(repo.writeClusterManifest(done));
    expect(err.code).toBe('REPO_FILE_MISSING');
    expect(err.message).toContain('backups/b1/rs0/manifest.json');
    expect((await repo.readClusterManifest('b1'))?.status).toBe('running');
    await expect(repo.writeClusterManifest({ ...done, commonTimestamp: null })).rejects.toThrow(/commonTimestamp/);
    await repo.writeReplicaSetManifest('b1', rsManifest());
    await repo.writeClusterManifest(done);
    expect((await repo.readClusterManifest('b1'))?.status).toBe('complete');
  });

  it('listBackups returns readable backups and reports unreadable ones', async () => {
    const s = new MemoryStorage();
    const repo = new Repository(s);
    await repo.writeClusterManifest(clusterManifest('b2', { status: 'failed', error: { code: 'CURSOR_LOST', message: 'lost' } }));
    await repo.writeClusterManifest(clusterManifest('b1'));
    await s.writeFile('backups/b3/manifest.json', 'garbage');
    await s.writeFile('backups/b4/rs0/files/x.wt', 'data without manifest');
    await s.writeFile('backups/.hidden/manifest.json', '{}');
    const { backups, problems } = await repo.listBackups();
    expect(backups.map((b) => [b.id, b.manifest.status])).toEqual([
      ['b1', 'running'],
      ['b2', 'failed'],
    ]);
    expect(problems.map((p) => p.id)).toEqual(['.hidden', 'b3', 'b4']);
    expect(problems[1]!.error).toMatch(/backups\/b3\/manifest.json is not valid JSON/);
    expect(problems[2]!.error).toMatch(/backups\/b4\/manifest.json is missing/);
    expect(await new Repository(new MemoryStorage()).listBackups()).toEqual({ backups: [], problems: [] });
  });

  it('removeBackupData removes files/ only; manifests and work files stay', async () => {
    const s = new MemoryStorage();
    const repo = new Repository(s);
    await repo.writeClusterManifest(clusterManifest('b1'));
    for (const rs of ['rs0', 'rs1']) {
      await repo.writeReplicaSetManifest('b1', rsManifest({ name: rs }));
      await s.writeFile(repo.dataFilePath('b1', rs, 'collection-0-1.wt'), 'data');
      await s.writeFile(repo.dataFilePath('b1', rs, 'journal/WiredTigerLog.0000000001'), 'journal');
      await repo.fileList('b1', rs).write([{ path: 'collection-0-1.wt', size: 4, kind: 'data' }]);
    }
    await repo.removeBackupData('b1', 'rs1');
    expect(await s.list('backups/b1/rs1')).toEqual(['backups/b1/rs1/.work/files.idx.json', 'backups/b1/rs1/.work/files.jsonl', 'backups/b1/rs1/manifest.json']);
    expect((await s.list('backups/b1/rs0/files')).length).toBe(2);
    await repo.removeBackupData('b1');
    await repo.removeBackupData('b1');
    expect((await s.list('')).filter((p) => p.includes('/files/'))).toEqual([]);
    expect(await repo.readClusterManifest('b1')).toBeDefined();
    expect(await repo.readReplicaSetManifest('b1', 'rs0')).toBeDefined();
    await repo.removeWorkFiles('b1');
    expect(await s.list('')).toEqual(['backups/b1/manifest.json', 'backups/b1/rs0/manifest.json', 'backups/b1/rs1/manifest.json']);
  });

  it('removeBackup removes a whole backup, the cluster manifest last; a crash part-way leaves it listed', async () => {
    const removed: string[] = [];
    let failOn: string | undefined;
    class Recording extends MemoryStorage {
      override async remove(path: string): Promise<void> {
        if (path === failOn) throw new Error(`crash removing ${path}`);
        removed.push(path);
        return super.remove(path);
      }
    }
    const s = new Recording();
    const repo = new Repository(s);
    for (const id of ['b1', 'b2']) {
      await repo.writeReplicaSetManifest(id, rsManifest({ name: 'rs0' }));
      await repo.writeReplicaSetManifest(id, rsManifest({ name: 'cfg' }));
      await s.writeFile(repo.dataFilePath(id, 'rs0', 'collection-0-1.wt'), 'data');
      await repo.fileList(id, 'rs0').write([{ path: 'collection-0-1.wt', size: 4, kind: 'data' }]);
      await repo.writeClusterManifest(clusterManifest(id, { status: 'failed', finishedAt: '2025-01-02T04:00:00.000Z' }));
    }
    failOn = 'backups/b1/manifest.json';
    await expect(repo.removeBackup('b1')).rejects.toThrow(/crash/);
    expect(await s.list('backups/b1')).toEqual(['backups/b1/manifest.json']);
    expect((await repo.listBackups()).backups.map((b) => b.id)).toEqual(['b1', 'b2']);
    failOn = undefined;
    removed.length = 0;
    await repo.removeBackup('b1');
    await repo.removeBackup('b1');
    expect(removed.slice(0, 2)).toEqual(['backups/b1/manifest.json', 'backups/b1']);
    expect(await s.list('backups/b1')).toEqual([]);
    removed.length = 0;
    await repo.removeBackup('b2');
    expect(removed).toEqual([
      'backups/b2/cfg/files',
      'backups/b2/cfg/.work',
      'backups/b2/rs0/files',
      'backups/b2/rs0/.work',
      'backups/b2/cfg',
      'backups/b2/rs0',
      'backups/b2/manifest.json',
      'backups/b2',
    ]);
    expect(await s.list('')).toEqual([]);
    expect(await repo.listBackups()).toEqual({ backups: [], problems: [] });
    await expect(repo.removeBackup('../x')).rejects.toThrow(/backup id/);
  });

  it('dataFilePath keeps dbpath files inside the replica set directory', () => {
    const repo = new Repository(new MemoryStorage());
    expect(repo.dataFilePath('b1', 'rs0', 'journal/WiredTigerLog.0000000001')).toBe('backups/b1/rs0/files/journal/WiredTigerLog.0000000001');
    expect(() => repo.dataFilePath('b1', 'rs0', '../../../cutpoint.json')).toThrow(/'\.\.' segments/);
    expect(() => repo.dataFilePath('b1', 'rs0', '/etc/passwd')).toThrow(/absolute/);
  });
});

describe('Repository: file list (work file)', () => {
  const N = 100_000;
  const entryAt = (i: number): FileListInput =>
    i % 1000 === 999
      ? { path: `journal/WiredTigerLog.${String(i).padStart(10, '0')}`, size: -1, kind: 'journal' }
      : { path: `collection-${i}-8123456789012345678.wt`, size: 4096 + i, kind: 'data' };
  function* entries(n = N): Generator<FileListInput> {
    for (let i = 0; i < n; i++) yield entryAt(i);
  }

  it(`writes ${N} entries and reads index ranges without reading the whole list`, async () => {
    const s = new FaultyStorage(new MemoryStorage());
    const repo = new Repository(s);
    const list = repo.fileList('b1', 'rs0');
    const info = await list.write(entries());
    expect(info.count).toBe(N);
    expect(info.wholeFiles).toBe(100);
    const listSize = (await s.stat(list.path))!.size;
    expect(listSize).toBeGreaterThan(5_000_000);

    for (const [from, to] of [
      [0, 10],
      [50_000, 50_500],
      [99_990, 100_000],
      [99_999, 200_000],
      [12_345, 12_346],
    ] as const) {
      const before = s.bytesRead;
      const got = await list.read(from, to);
      const read = s.bytesRead - before;
      expect(got.map((e) => e.index)).toEqual(Array.from({ length: Math.min(to, N) - from }, (_, k) => from + k));
      expect(got[0]).toEqual({ index: from, ...entryAt(from) });
      expect(got.at(-1)).toEqual({ index: Math.min(to, N) - 1, ...entryAt(Math.min(to, N) - 1) });
      // The sidecar (a few KB) plus a few 64 KiB chunks, not the 6+ MB list.
      expect(read).toBeLessThan(300_000);
    }
    expect(await list.info()).toEqual(info);
    let n = 0;
    let inOrder = true;
    for await (const e of list.entries()) inOrder &&= e.index === n++;
    expect(inOrder).toBe(true);
    expect(n).toBe(N);
  });

  it('streams from a real directory with bounded heap growth', async () => {
    const repo = fsRepository(dir);
    const list = repo.fileList('b1', 'rs0');
    await list.write(entries());
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    let last = -1;
    for (let from = 0; from < N; from += 10_000) {
      const batch = await list.read(from, from + 100);
      last = batch.at(-1)!.index;
    }
    expect(last).toBe(90_099);
    // Ten reads of 100 entries: far less than one copy of the list (~7 MB as text, ~30 MB as objects).
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(20_000_000);
  });

  it('a stale or missing sidecar falls back to a scan and still reads the right entries', async () => {
    const s = new MemoryStorage();
    const repo = new Repository(s);
    const list = repo.fileList('b1', 'rs0');
    await list.write(entries(5000));
    const oldSidecar = await s.readFile(list.indexPath);
    // Replace the list (one more character on line 3 shifts every offset) and put the old sidecar back.
    await list.write([...entries(5000)].map((e, i) => (i === 2 ? { ...e, path: `${e.path}x` } : e)));
    await s.writeFile(list.indexPath, oldSidecar);
    expect((await list.read(3000, 3002)).map((e) => e.path)).toEqual([...entries(3002)].slice(3000).map((e) => e.path));
    // Same size, different line lengths (no longer at the recorded boundaries).
    await list.write([...entries(5000)].map((e, i) => (i === 2 ? { ...e, path: `${e.path}x` } : i === 4 ? { ...e, path: e.path.replace('.wt', '') + 't' } : e)));
    await s.writeFile(list.indexPath, oldSidecar.toString().replace(/"bytes":\d+/, `"bytes":${(await s.stat(list.path))!.size}`));
    expect((await list.read(3000, 3001))[0]!.index).toBe(3000);
    await s.remove(list.indexPath);
    expect((await list.read(4998, 6000)).map((e) => e.index)).toEqual([4998, 4999]);
    expect((await list.info())?.count).toBe(5000);
  });

  it('append numbers new entries after the list and skips paths already listed (idempotent)', async () => {
    const repo = new Repository(new MemoryStorage());
    const list = repo.fileList('b1', 'rs0');
    await list.write([
      { path: 'collection-0-1.wt', size: 8192, kind: 'data' },
      { path: 'journal/WiredTigerLog.0000000001', size: -1, kind: 'journal' },
    ]);
    const extend = [
      { path: 'journal/WiredTigerLog.0000000001', size: -1, kind: 'journal' },
      { path: 'journal/WiredTigerLog.0000000002', size: -1, kind: 'journal' },
    ] as const;
    const first = await list.append(extend);
    expect(first.added).toEqual([{ index: 2, path: 'journal/WiredTigerLog.0000000002', size: -1, kind: 'journal' }]);
    expect(first.skipped).toEqual(['journal/WiredTigerLog.0000000001']);
    expect(first.info).toEqual({ count: 3, listedBytes: 8192, wholeFiles: 2 });
    const again = await list.append(extend);
    expect(again.added).toEqual([]);
    expect(again.info.count).toBe(3);
    expect((await list.read(0, 10)).map((e) => e.index)).toEqual([0, 1, 2]);
  });

  it('rejects bad entries on write, and reports a corrupted line with the file and line number', async () => {
    const s = new MemoryStorage('fl');
    const repo = new Repository(s);
    const list = repo.fileList('b1', 'rs0');
    await expect(list.write([{ path: '../../escape', size: 1, kind: 'data' }])).rejects.toMatchObject({ code: 'BAD_USAGE' });
    await expect(list.write([{ path: 'a.wt', size: -7, kind: 'data' }])).rejects.toThrow(/invalid size/);
    expect(await s.exists(list.path)).toBe(false);
    await list.write(entries(10));
    const text = (await s.readFile(list.path)).toString().split('\n');
    text[6] = '{"index": 6, "path": "x.wt", "size": "big", "kind": "data"}';
    await s.writeFile(list.path, text.join('\n'));
    const err = await errorOf(list.read(0, 10));
    expect(err).toMatchObject({ code: 'REPO_CORRUPT', field: 'size' });
    expect(err.message).toContain('memory:fl/backups/b1/rs0/.work/files.jsonl line 7');
    await expect(repo.fileList('b1', 'rs9').read(0, 1)).rejects.toMatchObject({ code: 'REPO_FILE_MISSING' });
    expect(await repo.fileList('b1', 'rs9').info()).toBeUndefined();
  });
});

describe('Repository: batch results and the replica-set manifest', () => {
  async function setup() {
    const repo = new Repository(new MemoryStorage('asm'));
    const list = repo.fileList('b1', 'rs0');
    const input: FileListInput[] = [
      { path: 'WiredTiger', size: 50, kind: 'data' },
      { path: 'collection-2.wt', size: 8192, kind: 'data' },
      { path: 'index-3.wt', size: 4096, kind: 'data' },
      { path: 'journal/WiredTigerLog.0000000001', size: -1, kind: 'journal' },
      { path: 'storage.bson', size: -1, kind: 'storage.bson' },
    ];
    await list.write(input);
    const stored = (i: number): BatchFile => ({
      index: i,
      path: input[i]!.path,
      size: input[i]!.size >= 0 ? input[i]!.size : 1000 + i,
      sha256: sha(input[i]!.path),
      kind: input[i]!.kind,
    });
    return { repo, stored };
  }

  it('assembles every batch result in file-list order, without the index field', async () => {
    const { repo, stored } = await setup();
    await repo.writeBatchResult('b1', 'rs0', 2, { files: [stored(4)] });
    await repo.writeBatchResult('b1', 'rs0', 0, { files: [stored(1), stored(0)] });
    await repo.writeBatchResult('b1', 'rs0', 1, { files: [stored(3), stored(2)] });
    await repo.writeBatchResult('b1', 'rs0', 1, { files: [stored(3), stored(2)] }); // a retried batch
    expect(await repo.listBatchResults('b1', 'rs0')).toEqual([0, 1, 2]);
    expect(await repo.readBatchResult('b1', 'rs0', 2)).toEqual({ files: [stored(4)] });
    expect(await repo.readBatchResult('b1', 'rs0', 7)).toBeUndefined();
    const m = await repo.assembleReplicaSetManifest('b1', 'rs0', META);
    expect(m.files.map((f) => f.path)).toEqual(['WiredTiger', 'collection-2.wt', 'index-3.wt', 'journal/WiredTigerLog.0000000001', 'storage.bson']);
    expect(m.files[3]).toEqual({ path: 'journal/WiredTigerLog.0000000001', size: 1003, sha256: sha('journal/WiredTigerLog.0000000001'), kind: 'journal' });
    expect(m).toMatchObject({ format: 'cutpoint/v2', name: 'rs0', ...META });
    await repo.writeReplicaSetManifest('b1', m);
    expect(await repo.readReplicaSetManifest('b1', 'rs0')).toEqual(m);
  });

  it('a journal file copied again by a later batch (after a later extend) supersedes the earlier copy; a data file may not', async () => {
    const { repo, stored } = await setup();
    await repo.writeBatchResult('b1', 'rs0', 0, { files: [0, 1, 2, 3, 4].map(stored) });
    const grown = { ...stored(3), size: 5000, sha256: sha('grown') };
    await repo.writeBatchResult('b1', 'rs0', 1, { files: [grown] });
    expect((await repo.assembleReplicaSetManifest('b1', 'rs0', META)).files[3]).toMatchObject({ size: 5000, sha256: sha('grown') });
    // The earlier batch cannot override the later one, and a data file's copies must agree.
    await repo.writeBatchResult('b1', 'rs0', 2, { files: [{ ...stored(1), sha256: sha('other') }] });
    await expect(repo.assembleReplicaSetManifest('b1', 'rs0', META)).rejects.toThrow(/file 1 \(collection-2.wt\) has different results in batches 0 and 2/);
  });

  it('refuses an incomplete or inconsistent set of results, saying what is wrong', async () => {
    const { repo, stored } = await setup();
    await repo.writeBatchResult('b1', 'rs0', 0, { files: [stored(0), stored(1)] });
    await repo.writeBatchResult('b1', 'rs0', 1, { files: [stored(4)] });
    let err = await errorOf(repo.assembleReplicaSetManifest('b1', 'rs0', META));
    expect(err.code).toBe('REPO_CORRUPT');
    expect(err.message).toMatch(/no copy result for 2 of 5 listed files \(indexes 2, 3\)/);

    await repo.writeBatchResult('b1', 'rs0', 2, { files: [stored(2), stored(3)] });
    await repo.writeBatchResult('b1', 'rs0', 3, { files: [{ ...stored(2), sha256: sha('other') }] });
    err = await errorOf(repo.assembleReplicaSetManifest('b1', 'rs0', META));
    expect(err.message).toMatch(/file 2 \(index-3.wt\) has different results in batches 2 and 3/);
    await repo.storage.remove(repo.workDir('b1', 'rs0') + '/batch-3.json');

    await repo.writeBatchResult('b1', 'rs0', 2, { files: [{ ...stored(2), size: 4000 }, stored(3)] });
    err = await errorOf(repo.assembleReplicaSetManifest('b1', 'rs0', META));
    expect(err.message).toMatch(/index-3.wt was stored with 4000 bytes, but 4096 were listed/);

    await repo.writeBatchResult('b1', 'rs0', 2, { files: [{ ...stored(2), path: 'other.wt' }, stored(3)] });
    err = await errorOf(repo.assembleReplicaSetManifest('b1', 'rs0', META));
    expect(err.message).toMatch(/file 2 is listed as data index-3.wt but its result says data other.wt/);

    await repo.writeBatchResult('b1', 'rs0', 2, { files: [stored(2), stored(3), { ...stored(3), index: 9 }] });
    err = await errorOf(repo.assembleReplicaSetManifest('b1', 'rs0', META));
    expect(err.message).toMatch(/file index 9, but the file list has 5 entries/);

    await repo.storage.writeFile(repo.workDir('b1', 'rs0') + '/batch-2.json', '{"files": [{"index": 2}]}');
    err = await errorOf(repo.readBatchResult('b1', 'rs0', 2));
    expect(err).toMatchObject({ code: 'REPO_CORRUPT', field: 'files[0].path' });
    expect(err.message).toContain('memory:asm/backups/b1/rs0/.work/batch-2.json');

    await expect(repo.assembleReplicaSetManifest('b1', 'rs1', META)).rejects.toMatchObject({ code: 'REPO_FILE_MISSING' });
  });

  it('a file-list path stores under files/ in a real directory and validates on the way', async () => {
    const repo = fsRepository(dir);
    await repo.init();
    await repo.storage.writeFile(repo.dataFilePath('b1', 'rs0', 'journal/WiredTigerLog.0000000001'), 'j');
    expect(await new FsStorage(dir).list('backups')).toEqual(['backups/b1/rs0/files/journal/WiredTigerLog.0000000001']);
  });
});
