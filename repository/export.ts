/**
 * Export: one replica set of a complete backup as a plain dbpath, written into a directory or as a tar stream. Every
 * byte comes through {@link Repository.openStoredFile} (v2: each chunk checked against its id as it is read), and
 * every file is checked against its manifest entry (its size, and its SHA-256 when it has one) as it streams: a file longer than its entry is
 * cut off before the excess is written, and a mismatch fails with CHECKSUM_MISMATCH naming the file.
 *
 * A directory export writes each file under a temporary name and renames it into place only once it checked out, so a
 * failed export leaves no file with wrong bytes under its real name. A tar stream cannot take bytes back: a failed
 * export stops the stream before its end-of-archive blocks, so every tar reader reports the archive as truncated.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { pack as tarPack, type Pack } from 'tar-stream';
import { CutpointError } from '../common/errors.ts';
import type { ClusterManifest, ManifestFile, ReplicaSetManifest } from '../common/manifest.ts';
import type { Repository } from './repository.ts';
import { validatePath } from './storage.ts';

/** What an export wrote. */
export interface ExportSummary {
  backupId: string;
  cluster: string;
  replicaSet: string;
  files: number;
  bytes: number;
}

/** The manifests of a replica set that can be exported: the backup exists, is complete and holds `rs`. */
export async function exportableReplicaSet(repo: Repository, id: string, rs: string): Promise<{ cluster: ClusterManifest; replicaSet: ReplicaSetManifest }> {
  await repo.open();
  const cm = await repo.readClusterManifest(id);
  if (!cm) throw new CutpointError('BACKUP_NOT_FOUND', `no backup '${id}' in repository ${repo.location}`);
  if (cm.status !== 'complete') {
    throw new CutpointError('BACKUP_NOT_RESTORABLE', `backup '${id}' is ${cm.status}${cm.error ? ` (${cm.error.code}: ${cm.error.message})` : ''}: only a complete backup can be exported`);
  }
  const names = cm.replicaSets.map((r) => r.name);
  if (!names.includes(rs)) throw new CutpointError('BAD_USAGE', `backup '${id}' has no replica set '${rs}' (it has ${names.join(', ')})`);
  const rm = await repo.readReplicaSetManifest(id, rs);
  if (!rm) throw new CutpointError('REPO_FILE_MISSING', `backup '${id}' has no manifest for replica set ${rs} in ${repo.location}`);
  return { cluster: cm, replicaSet: rm };
}

/** The stored bytes of `f`, checked against its manifest entry as they pass (see the module comment). */
async function* checkedBytes(repo: Repository, id: string, rs: string, f: ManifestFile): AsyncGenerator<Buffer> {
  // A file with a whole-file SHA-256 (v1, and v2 backups written before it was dropped) is checked against it; a v2
  // file without one by its chunks, each checked against its id as it is read, and its size (docs/repository-format.md section 9).
  const hash = f.sha256 !== undefined ? createHash('sha256') : undefined;
  let size = 0;
  const mismatch = (what: string) =>
    new CutpointError('CHECKSUM_MISMATCH', `backup ${id}, replica set ${rs}: ${f.path} in ${repo.location} ${what}; the manifest says ${f.size} bytes${f.sha256 ? ` with SHA-256 ${f.sha256}` : ''}`, { replicaSet: rs, path: f.path });
  for await (const chunk of await repo.openStoredFile(id, rs, f)) {
    size += chunk.length;
    if (size > f.size) throw mismatch(`has more than ${f.size} bytes`);
    hash?.update(chunk);
    yield chunk;
  }
  const sha = hash?.digest('hex');
  if (size !== f.size || (sha !== undefined && f.sha256 !== undefined && sha !== f.sha256)) throw mismatch(`has ${size} bytes${sha ? ` with SHA-256 ${sha}` : ''}`);
}

/** Refuses a target that holds something, unless `force`. */
function refuseNonEmpty(target: string, nonEmpty: boolean, force: boolean): void {
  if (nonEmpty && !force) throw new CutpointError('TARGET_NOT_EMPTY', `export target ${target} is not empty; give --force to write over it`);
}

/**
 * Writes replica set `rs` of backup `id` into directory `dir` (created if missing) as a dbpath. A non-empty `dir` is
 * refused (TARGET_NOT_EMPTY) unless `force`, which writes over files of the same names and leaves the others.
 */
export async function exportToDirectory(repo: Repository, id: string, rs: string, dir: string, opts: { force?: boolean } = {}): Promise<ExportSummary> {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new CutpointError('BAD_USAGE', `export target ${dir} exists and is not a directory`);
  refuseNonEmpty(dir, existsSync(dir) && readdirSync(dir).length > 0, opts.force === true);
  const { cluster, replicaSet } = await exportableReplicaSet(repo, id, rs);
  mkdirSync(dir, { recursive: true });
  for (const f of replicaSet.files) {
    const dest = join(dir, ...validatePath(f.path).split('/'));
    mkdirSync(dirname(dest), { recursive: true });
    const partial = `${dest}.cutpoint-partial`;
    const out = await open(partial, 'w', 0o600);
    try {
      for await (const chunk of checkedBytes(repo, id, rs, f)) await out.write(chunk);
      await out.sync();
    } catch (e) {
      await out.close();
      rmSync(partial, { force: true });
      throw e;
    }
    await out.close();
    await rename(partial, dest);
  }
  return summary(cluster, replicaSet);
}

/** Adds one entry to `pack` and writes `bytes` into it, waiting for the pack to drain. */
async function tarEntry(pack: Pack, header: Parameters<Pack['entry']>[0], bytes?: AsyncIterable<Buffer>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    // A failed entry fails the export through `reject`; the pack destroyed after it destroys the entry with the same
    // error, which must not surface again as an unhandled stream error.
    entry.on('error', () => undefined);
    if (!bytes) return;
    (async () => {
      for await (const chunk of bytes) {
        if (!entry.write(chunk)) await new Promise<void>((r) => entry.once('drain', () => r()));
      }
      entry.end();
    })().catch((e: unknown) => reject(e as Error));
  });
}

/**
 * Writes replica set `rs` of backup `id` to `out` as a tar stream (POSIX ustar, pax headers where a name or size needs
 * them): its directories, then its files, with the backup's finish time as their modification time. `end`: whether
 * to end `out` afterwards (not for stdout).
 */
export async function exportToTar(repo: Repository, id: string, rs: string, out: Writable, opts: { end?: boolean } = {}): Promise<ExportSummary> {
  const { cluster, replicaSet } = await exportableReplicaSet(repo, id, rs);
  const mtime = new Date(cluster.finishedAt ?? cluster.startedAt);
  const pack = tarPack();
  const piped = copyOut(pack, out, opts.end ?? true);
  try {
    const dirs = new Set<string>();
    for (const f of replicaSet.files) {
      for (let d = posix.dirname(validatePath(f.path)); d !== '.' && !dirs.has(d); d = posix.dirname(d)) dirs.add(d);
    }
    for (const d of [...dirs].sort()) await tarEntry(pack, { name: `${d}/`, type: 'directory', mode: 0o700, mtime });
    for (const f of replicaSet.files) {
      await tarEntry(pack, { name: f.path, type: 'file', size: f.size, mode: 0o600, mtime }, checkedBytes(repo, id, rs, f));
    }
    pack.finalize();
  } catch (e) {
    // No end-of-archive blocks: the reader sees a truncated archive, never a short file it could take for whole.
    pack.destroy(e as Error);
    await piped.catch(() => undefined);
    throw e;
  }
  await piped;
  return summary(cluster, replicaSet);
}

/**
 * Copies the pack's bytes to `out` with back-pressure; settles once `out` took the last byte (and ended, with `end`).
 * Not stream.pipeline: with `end: false` it waits for a 'finish' that never comes.
 */
async function copyOut(pack: Pack, out: Writable, end: boolean): Promise<void> {
  // A reader that goes away (EPIPE on stdout) stops the export with that error.
  let failure: Error | undefined;
  const onError = (e: Error) => {
    failure ??= e;
    pack.destroy(e);
  };
  out.on('error', onError);
  try {
    for await (const chunk of pack as AsyncIterable<Buffer>) {
      if (!out.write(chunk)) await once(out, 'drain');
    }
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (end) out.end(done);
      else out.write(Buffer.alloc(0), done);
    });
  } catch (e) {
    throw failure ?? e;
  } finally {
    out.off('error', onError);
  }
}

/** Writes the tar stream of {@link exportToTar} into file `path`, under a temporary name renamed into place at the end. */
export async function exportToTarFile(repo: Repository, id: string, rs: string, path: string, opts: { force?: boolean } = {}): Promise<ExportSummary> {
  refuseNonEmpty(path, existsSync(path), opts.force === true);
  await exportableReplicaSet(repo, id, rs); // refuse bad input before a file is created
  const partial = `${path}.cutpoint-partial`;
  // `flush`: the file is fsynced before its descriptor closes, so the rename publishes durable bytes.
  const stream = createWriteStream(partial, { mode: 0o600, flush: true });
  const closed = once(stream, 'close');
  try {
    const result = await exportToTar(repo, id, rs, stream);
    await closed;
    await rename(partial, path);
    return result;
  } catch (e) {
    stream.destroy();
    await closed.catch(() => undefined);
    rmSync(partial, { force: true });
    throw e;
  }
}

function summary(cm: ClusterManifest, rm: ReplicaSetManifest): ExportSummary {
  return { backupId: cm.id, cluster: cm.cluster, replicaSet: rm.name, files: rm.files.length, bytes: rm.files.reduce((n, f) => n + f.size, 0) };
}
