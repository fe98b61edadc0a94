/**
 * `cutpoint repo check`: the structure of a repository checked from its own files (docs/repository-format.md
 * sections 2, 7-9, 11), and with `readData` every pack read whole. Every damaged object is reported with the backups
 * (and files) that need it; packs no index names are garbage (a warning), not damage.
 *
 * v2: cutpoint.json; every index file parses (repository/v2/index-file.ts) and its pack exists with the index's size;
 * every pack's header (`readPackHeader`) agrees with its index file; every chunk of every replica-set manifest of
 * every backup (whatever its status) is in some index. `readData`: `checkPack` on every indexed pack (its SHA-256 is
 * its id, every blob decompresses to its length and hash). Without `readData` a damaged byte inside a blob is not
 * found: the header stays sound (docs/repository-format.md section 11).
 *
 * A manifest entry without `chunks` (format v1) is checked as a stored file: it exists with its size, and with
 * `readData` its SHA-256.
 *
 * Memory: the index (pack → blobs) is held once; manifests are read one at a time.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { CutpointError } from '../common/errors.ts';
import { REPOSITORY_FORMAT } from '../common/manifest.ts';
import { pool } from '../lib/pool.ts';
import { CorruptChunkError, CorruptFileError } from './errors.ts';
import type { Repository } from './repository.ts';
import { isStorageError } from './storage.ts';
import { AuthenticationError } from './encryption/object-cipher.ts';
import { pendingUploads } from './pending-uploads.ts';
import { INDEX_DIR, packIdOfIndexPath, parseIndexFile } from './v2/index-file.ts';
import { checkPack, DATA_DIR, packPath, readPackHeader } from './v2/pack.ts';
import type { PackInfo } from './v2/pack-format.ts';

/** What kind of object is damaged. */
export type CheckProblemKind =
  /** cutpoint.json is not valid. */
  | 'config'
  /** An index file does not parse or fails its checks. */
  | 'index'
  /** An index file names a pack that is not there. */
  | 'pack-missing'
  /** A pack whose size, header or (with `readData`) bytes are wrong. */
  | 'pack'
  /** A manifest names a chunk no index file names. */
  | 'chunk-missing'
  /** A cluster or replica-set manifest is unreadable or missing. */
  | 'manifest'
  /** A stored file (v1 manifest entry) is missing, has another size, or (with `readData`) another SHA-256. */
  | 'file';

/** A file of a backup that needs a damaged object. */
export interface CheckFileRef {
  backup: string;
  replicaSet: string;
  path: string;
}

/** One damaged object. */
export interface CheckProblem {
  kind: CheckProblemKind;
  /** The object: a repository path (`data/ab/ab…`, `index/….json`, a manifest) or a chunk id. */
  object: string;
  message: string;
  /** Ids of the backups whose manifests need the object, sorted. */
  backups: string[];
  /** The files of those backups that need it (replica set and path in the dbpath). */
  files: CheckFileRef[];
}

/** Something that is not damage but takes space: a pack no index file names, a stray file under `data/`. */
export interface CheckGarbage {
  kind: 'unreferenced-pack' | 'stray-file' | 'pending-upload';
  object: string;
  size: number;
  message: string;
}

/** What {@link checkRepository} found. */
export interface CheckReport {
  repo: string;
  /** The format of cutpoint.json; null when it cannot be read. */
  format: string | null;
  checked: {
    /** Packs examined (named by an index file). */
    packs: number;
    /** Index files read. */
    indexes: number;
    /** Distinct chunks the index files name. */
    chunks: number;
    /** Backups whose manifests were read. */
    backups: number;
    /** Manifest file entries checked. */
    files: number;
  };
  readData: boolean;
  problems: CheckProblem[];
  garbage: CheckGarbage[];
}

export interface CheckOptions {
  /** Read every pack whole (v1: every stored file) and check its bytes. */
  readData?: boolean;
  /** Called as packs (or v1 files) are read with `readData`: done of total. */
  onProgress?: (done: number, total: number) => void;
  /** Packs checked at once (default 2). */
  concurrency?: number;
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The pack id of a path under `data/` (`data/<2 hex>/<id>`), or undefined. */
function packIdOfDataPath(path: string): string | undefined {
  const m = /^data\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(path);
  return m && m[2]!.startsWith(m[1]!) ? m[2] : undefined;
}

/** Whether two blob lists are the same (ids, offsets, lengths, plaintext lengths, in order). */
function sameBlobs(a: PackInfo['blobs'], b: PackInfo['blobs']): boolean {
  return a.length === b.length && a.every((x, i) => x.id === b[i]!.id && x.offset === b[i]!.offset && x.length === b[i]!.length && x.rawLength === b[i]!.rawLength);
}

/**
 * Checks the repository (see the module comment). Damage is returned, not thrown; a repository that cannot be
 * opened at all (no cutpoint.json, another format: `REPO_UNUSABLE`) and storage failures throw.
 */
export async function checkRepository(repo: Repository, options: CheckOptions = {}): Promise<CheckReport> {
  const readData = options.readData === true;
  const storage = repo.storage;
  const report: CheckReport = {
    repo: repo.location,
    format: null,
    checked: { packs: 0, indexes: 0, chunks: 0, backups: 0, files: 0 },
    readData,
    problems: [],
    garbage: [],
  };
  try {
    report.format = (await repo.open()).format;
  } catch (err) {
    if (!(err instanceof CorruptFileError)) throw err;
    report.problems.push({ kind: 'config', object: 'cutpoint.json', message: err.message, backups: [], files: [] });
    return report;
  }

  // Problems by object, so that the manifest pass can attribute backups and files to them.
  const problems = new Map<string, CheckProblem>();
  const add = (kind: CheckProblemKind, object: string, message: string): CheckProblem => {
    let p = problems.get(object);
    if (!p) problems.set(object, (p = { kind, object, message, backups: [], files: [] }));
    return p;
  };
  /** Chunk id → the problems of the damaged packs holding it. */
  const damagedChunks = new Map<string, CheckProblem[]>();
  const markPack = (info: PackInfo, problem: CheckProblem): void => {
    for (const b of info.blobs) {
      const list = damagedChunks.get(b.id);
      if (!list) damagedChunks.set(b.id, [problem]);
      else if (!list.includes(problem)) list.push(problem);
    }
  };
  const indexed = new Set<string>();

  if (report.format === REPOSITORY_FORMAT) {
    // Index files (docs/repository-format.md section 8): each parsed by itself, so one bad file does not hide the rest.
    const indexPaths = (await storage.list(INDEX_DIR)).filter((p) => packIdOfIndexPath(p) !== undefined).sort();
    const infos: PackInfo[] = [];
    await pool(indexPaths, 16, async (path) => {
      try {
        infos.push(parseIndexFile(await storage.readFile(path), path, `${storage.location}/${path}`));
      } catch (err) {
        if (!(err instanceof CorruptFileError || err instanceof AuthenticationError)) throw err;
        add('index', path, err.message);
      }
    });
    infos.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    report.checked.indexes = indexPaths.length;
    for (const info of infos) for (const b of info.blobs) indexed.add(b.id);
    report.checked.chunks = indexed.size;

    // Packs on storage: those no index file names are garbage.
    const named = new Set(infos.map((i) => i.id));
    const dataPaths = await storage.list(DATA_DIR);
    for (const path of dataPaths.sort()) {
      const id = packIdOfDataPath(path);
      if (id !== undefined && named.has(id)) continue;
      const size = (await storage.stat(path))?.size ?? 0;
      report.garbage.push(
        id === undefined
          ? { kind: 'stray-file', object: path, size, message: `${path} is not named as a pack (data/<2 hex>/<64 hex>)` }
          : { kind: 'unreferenced-pack', object: path, size, message: `pack ${path} has no index file (a backup interrupted between pack and index): garbage for prune` },
      );
    }

    // Object storage: multipart uploads never completed (a write under way, or one a crashed worker left).
    for (const u of await pendingUploads(repo.raw)) {
      const since = u.initiated ? ` started ${u.initiated.toISOString()}` : '';
      report.garbage.push({
        kind: 'pending-upload',
        object: u.path,
        size: 0,
        message: `an unfinished multipart upload (${u.uploadId})${since} for ${u.path}: a write under way, or one a crashed worker left; prune aborts it`,
      });
    }

    // Every indexed pack: there, with the index's size and a header that agrees (with readData: its bytes).
    report.checked.packs = infos.length;
    const hasher = await repo.chunkHasher();
    let done = 0;
    const structure = async (info: PackInfo): Promise<CheckProblem | undefined> => {
      const path = packPath(info.id);
      const stat = await storage.stat(path);
      if (!stat) return add('pack-missing', path, `pack ${path} is missing, but index/${info.id}.json names it (${info.blobs.length} chunks)`);
      if (stat.size !== info.size) return add('pack', path, `pack ${path} has ${stat.size} bytes, its index file says ${info.size}`);
      let header: PackInfo;
      try {
        header = await readPackHeader(storage, info.id);
      } catch (err) {
        if (!(err instanceof CorruptFileError || err instanceof AuthenticationError)) throw err;
        return add('pack', path, err.message);
      }
      if (!sameBlobs(header.blobs, info.blobs)) return add('pack', path, `pack ${path}: its header lists other blobs than index/${info.id}.json`);
      if (!readData) return undefined;
      try {
        await checkPack(storage, info.id, hasher);
      } catch (err) {
        // A pack removed while being checked reads as missing: damage too.
        if (!(err instanceof CorruptFileError || err instanceof AuthenticationError || err instanceof CorruptChunkError || (isStorageError(err) && err.code === 'REPO_FILE_MISSING'))) throw err;
        return add('pack', path, err.message);
      }
      return undefined;
    };
    await pool(infos, readData ? Math.max(1, options.concurrency ?? 2) : 8, async (info) => {
      const problem = await structure(info);
      if (problem) markPack(info, problem);
      if (readData) options.onProgress?.(++done, infos.length);
    });
  }

  // Manifests of every backup, whatever its status: every chunk indexed, damaged objects attributed.
  const listing = await repo.listBackups();
  for (const p of listing.problems) {
    const problem = add('manifest', p.path, p.error);
    problem.backups.push(p.id);
  }
  const v1Files: Array<CheckFileRef & { stored: string; size: number; sha256: string }> = [];
  for (const { id, manifest } of listing.backups) {
    report.checked.backups++;
    for (const rs of manifest.replicaSets) {
      const rsPath = `backups/${id}/${rs.name}/manifest.json`;
      let rm;
      try {
        rm = await repo.readReplicaSetManifest(id, rs.name);
      } catch (err) {
        if (!(err instanceof CutpointError)) throw err;
        add('manifest', rsPath, messageOf(err)).backups.push(id);
        continue;
      }
      if (!rm) {
        // A running, failed or cancelled backup may not have written it; a complete one must have.
        if (manifest.status === 'complete') add('manifest', rsPath, `${rsPath} is missing, but backup ${id} is complete`).backups.push(id);
        continue;
      }
      for (const f of rm.files) {
        report.checked.files++;
        const ref: CheckFileRef = { backup: id, replicaSet: rs.name, path: f.path };
        if (f.chunks === undefined) {
          v1Files.push({ ...ref, stored: repo.dataFilePath(id, rs.name, f.path), size: f.size, sha256: f.sha256 ?? '' });
          continue;
        }
        const hit = new Set<CheckProblem>();
        for (const c of f.chunks) {
          if (!indexed.has(c)) hit.add(add('chunk-missing', c, `chunk ${c} is in no index file (needed by ${rs.name}/${f.path} of backup ${id})`));
          for (const p of damagedChunks.get(c) ?? []) hit.add(p);
        }
        for (const p of hit) p.files.push(ref);
      }
    }
  }

  // Stored files of v1 entries: there with their size (and, reading data, their SHA-256).
  let done = 0;
  await pool(v1Files, 2, async (f) => {
    const fail = (message: string): void => {
      add('file', f.stored, message).files.push(f);
    };
    const stat = await storage.stat(f.stored);
    if (!stat) fail(`${f.stored} is missing`);
    else if (stat.size !== f.size) fail(`${f.stored} has ${stat.size} bytes, its manifest says ${f.size}`);
    else if (readData) {
      const hash = createHash('sha256');
      for await (const piece of await storage.openRead(f.stored)) hash.update(piece as Buffer);
      const actual = hash.digest('hex');
      if (actual !== f.sha256) fail(`${f.stored} hashes to ${actual}, its manifest says ${f.sha256}`);
    }
    if (readData && report.format !== REPOSITORY_FORMAT) options.onProgress?.(++done, v1Files.length);
  });

  for (const p of problems.values()) {
    p.backups = [...new Set([...p.backups, ...p.files.map((f) => f.backup)])].sort();
    p.files.sort((a, b) => a.backup.localeCompare(b.backup) || a.replicaSet.localeCompare(b.replicaSet) || a.path.localeCompare(b.path));
  }
  report.problems = [...problems.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.object.localeCompare(b.object));
  return report;
}
