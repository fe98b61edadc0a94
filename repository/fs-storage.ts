/**
 * {@link FsStorage}: a repository in a local (or mounted) directory. Every write is atomic and durable in the sense
 * of docs/interfaces.md section 4: temporary name in the same directory, write, fsync of the file, rename, fsync of the
 * directory. Directories are created on demand, and the parents of new directories are fsynced too.
 *
 * @module
 */
import { type FileHandle, lstat, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import {
  type CreateWriterOptions,
  isHiddenName,
  type OpenReadOptions,
  pendingName,
  type RangeReader,
  type Storage,
  StorageError,
  type StorageOp,
  type StorageStat,
  type StorageWriter,
  systemError,
  tempName,
  toStorageError,
  validatePath,
  validatePrefix,
} from './storage.ts';

/** Points inside a write where a test can simulate a crash (see {@link FsStorageOptions.killPoint}). */
export type KillPoint =
  | 'writeFile:afterWrite'
  | 'writeFile:beforeRename'
  | 'writeFile:afterRename'
  | 'commit:beforeRename'
  | 'commit:afterRename';

/** Thrown by a {@link FsStorageOptions.killPoint} hook: the backend then leaves the disk exactly as a crash would. */
export class SimulatedCrash extends Error {
  override name = 'SimulatedCrash';
}

/** Options of {@link FsStorage}. */
export interface FsStorageOptions {
  /** Mode of new files (before the umask). Default 0o640: backups hold database contents. */
  fileMode?: number;
  /** Mode of new directories (before the umask). Default 0o750. */
  dirMode?: number;
  /**
   * Test hook called at each {@link KillPoint}. Throwing {@link SimulatedCrash} stops the write there without any
   * cleanup, as a process crash would; any other exception is treated as an ordinary failure.
   */
  killPoint?: (point: KillPoint, path: string) => void;
  /** Chunk size of {@link FsStorage.openRead} streams. Default 64 KiB. */
  readChunkBytes?: number;
}

/** Ranges up to this many bytes are read in one call (see {@link FsStorage.openAbsolute}). */
const RANGE_READ_BYTES = 8 * 1024 * 1024;

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

/** A {@link Storage} in a directory of the local filesystem. */
export class FsStorage implements Storage {
  /** The absolute directory of the repository. */
  readonly location: string;
  readonly #opts: Required<Omit<FsStorageOptions, 'killPoint'>> & Pick<FsStorageOptions, 'killPoint'>;

  /** `root` is the repository directory; nothing is touched on disk until the first operation. */
  constructor(root: string, options: FsStorageOptions = {}) {
    this.location = resolve(root);
    this.#opts = { fileMode: 0o640, dirMode: 0o750, readChunkBytes: 64 * 1024, ...options };
  }

  /** The absolute filesystem path of a repository path (validated). */
  absolutePath(path: string, op: StorageOp = 'stat'): string {
    return join(this.location, ...validatePath(path, op, this.location).split('/'));
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const abs = this.absolutePath(path, 'writeFile');
    const dir = dirname(abs);
    const tmp = join(dir, tempName(basename(abs)));
    let fh: FileHandle | undefined;
    try {
      await this.#ensureDir(dir);
      fh = await open(tmp, 'wx', this.#opts.fileMode);
      await fh.writeFile(data);
      this.#kill('writeFile:afterWrite', path);
      await fh.sync();
      await fh.close();
      fh = undefined;
      this.#kill('writeFile:beforeRename', path);
      await rename(tmp, abs);
      this.#kill('writeFile:afterRename', path);
      await fsyncDir(dir);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      if (err instanceof SimulatedCrash) throw err;
      await unlink(tmp).catch(() => undefined);
      throw toStorageError(err, 'writeFile', path, this.location);
    }
  }

  async createWriter(path: string, options: CreateWriterOptions = {}): Promise<StorageWriter> {
    const abs = this.absolutePath(path, 'createWriter');
    const { resumeFrom } = options;
    if (resumeFrom !== undefined && !(Number.isSafeInteger(resumeFrom) && resumeFrom >= 0)) {
      throw new StorageError('BAD_USAGE', `resumeFrom must be a non-negative integer, got ${resumeFrom} (writing '${path}')`, 'createWriter', path, this.location);
    }
    const pending = pendingName(abs);
    try {
      await this.#ensureDir(dirname(abs));
      if (resumeFrom !== undefined) {
        let fh: FileHandle | undefined;
        try {
          fh = await open(pending, 'r+');
        } catch (err) {
          if (errnoOf(err) !== 'ENOENT') throw err;
        }
        if (fh) {
          try {
            const size = (await fh.stat()).size;
            const keep = size >= resumeFrom ? resumeFrom : 0;
            await fh.truncate(keep);
            return new FsWriter(this, path, abs, pending, fh, keep);
          } catch (err) {
            await fh.close().catch(() => undefined);
            throw err;
          }
        }
      }
      const fh = await open(pending, 'w', this.#opts.fileMode);
      return new FsWriter(this, path, abs, pending, fh, 0);
    } catch (err) {
      throw toStorageError(err, 'createWriter', path, this.location);
    }
  }

  async readFile(path: string): Promise<Buffer> {
    const abs = this.absolutePath(path, 'readFile');
    try {
      return await readFile(abs);
    } catch (err) {
      throw toStorageError(await this.#missingIfUnderFile(err), 'readFile', path, this.location);
    }
  }

  async openRead(path: string, options: OpenReadOptions = {}): Promise<Readable> {
    const abs = this.absolutePath(path, 'openRead');
    return this.openAbsolute(abs, path, 'openRead', options);
  }

  /** One handle for many whole-range reads (a pack read chunk by chunk): each read is one positional read call. */
  async openRanges(path: string): Promise<RangeReader> {
    const abs = this.absolutePath(path, 'openRead');
    let fh: FileHandle;
    try {
      fh = await open(abs, 'r');
    } catch (err) {
      throw toStorageError(await this.#missingIfUnderFile(err), 'openRead', path, this.location);
    }
    const read = async (start: number, end: number): Promise<Buffer> => {
      if (!(Number.isSafeInteger(start) && start >= 0 && Number.isSafeInteger(end) && end >= start)) {
        throw new StorageError('BAD_USAGE', `invalid range start=${start} end=${end} reading '${path}'`, 'openRead', path, this.location);
      }
      const buf = Buffer.allocUnsafe(end - start);
      let n = 0;
      try {
        while (n < buf.length) {
          const { bytesRead } = await fh.read(buf, n, buf.length - n, start + n);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
      } catch (err) {
        throw toStorageError(err, 'openRead', path, this.location);
      }
      return n === buf.length ? buf : buf.subarray(0, n);
    };
    return { read, close: () => fh.close().catch(() => undefined) };
  }

  /** @internal Opens a range stream on an absolute file (also used for pending files). */
  async openAbsolute(abs: string, path: string, op: StorageOp, options: OpenReadOptions): Promise<Readable> {
    const start = options.start ?? 0;
    if (!(Number.isSafeInteger(start) && start >= 0) || (options.end !== undefined && !(Number.isSafeInteger(options.end) && options.end >= start))) {
      throw new StorageError('BAD_USAGE', `invalid range start=${options.start} end=${options.end} reading '${path}'`, op, path, this.location);
    }
    let fh: FileHandle;
    try {
      fh = await open(abs, 'r');
    } catch (err) {
      throw toStorageError(await this.#missingIfUnderFile(err), op, path, this.location);
    }
    // A bounded range up to RANGE_READ_BYTES (a chunk's blob in a pack) is one read: a stream of 64 KiB pieces costs a
    // read call, a buffer and a copy into the caller's whole buffer (repository/v2/read-range.ts) per piece.
    const range = options.end === undefined ? Infinity : options.end - start;
    const chunk = range > this.#opts.readChunkBytes && range <= RANGE_READ_BYTES ? range : this.#opts.readChunkBytes;
    return new FileRangeReadable(fh, start, options.end ?? Infinity, chunk, (err) => toStorageError(err, op, path, this.location));
  }

  async stat(path: string): Promise<StorageStat | undefined> {
    const abs = this.absolutePath(path, 'stat');
    try {
      const st = await stat(abs);
      return st.isFile() ? { size: st.size } : undefined;
    } catch (err) {
      const mapped = await this.#missingIfUnderFile(err);
      if (errnoOf(mapped) === 'ENOENT') return undefined;
      throw toStorageError(mapped, 'stat', path, this.location);
    }
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix, 'list', this.location);
    const out: string[] = [];
    const walk = async (rel: string, top: boolean): Promise<void> => {
      const abs = rel === '' ? this.location : join(this.location, ...rel.split('/'));
      let entries;
      try {
        entries = await readdir(abs, { withFileTypes: true });
      } catch (err) {
        const errno = errnoOf(err);
        if (errno === 'ENOENT') return;
        if (errno === 'ENOTDIR' && top && rel !== '') {
          // `prefix` names a file: it has no children. A component above it being a file is a broken repository.
          const st = await lstat(abs).catch((e: unknown) => {
            throw toStorageError(e, 'list', prefix, this.location);
          });
          if (!st.isDirectory()) return;
        }
        if (errno === 'ENOTDIR' && !top) return;
        throw toStorageError(err, 'list', prefix, this.location);
      }
      for (const e of entries) {
        if (isHiddenName(e.name)) continue;
        const child = rel === '' ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(child, false);
        else if (e.isFile()) out.push(child);
      }
    };
    await walk(prefix, true);
    return out.sort();
  }

  async listChildren(prefix: string): Promise<string[]> {
    validatePrefix(prefix, 'listChildren', this.location);
    const abs = prefix === '' ? this.location : join(this.location, ...prefix.split('/'));
    try {
      const names = await readdir(abs);
      return names.filter((n) => !isHiddenName(n)).sort();
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return [];
      if (errnoOf(err) === 'ENOTDIR' && prefix !== '' && (await lstat(abs).then((s) => s.isFile(), () => false))) return [];
      throw toStorageError(err, 'listChildren', prefix, this.location);
    }
  }

  async remove(path: string): Promise<void> {
    const abs = this.absolutePath(path, 'remove');
    try {
      try {
        await rm(abs, { recursive: true, force: true });
      } catch (err) {
        // A file where a directory of `path` would be: nothing to remove, unless the repository itself is unusable.
        if (errnoOf(err) !== 'ENOTDIR' || !(await lstat(this.location).then((st) => st.isDirectory(), () => false))) throw err;
        return;
      }
      await fsyncDir(dirname(abs)).catch((err: unknown) => {
        if (errnoOf(err) !== 'ENOENT') throw err;
      });
    } catch (err) {
      throw toStorageError(err, 'remove', path, this.location);
    }
  }

  /**
   * ENOTDIR inside a usable repository (a file where `path` expects a directory) just means "no such file", as on
   * an object store; ENOTDIR because the repository itself sits under a regular file stays REPO_UNUSABLE.
   */
  async #missingIfUnderFile(err: unknown): Promise<unknown> {
    if (errnoOf(err) !== 'ENOTDIR') return err;
    const rootIsDir = await lstat(this.location).then((st) => st.isDirectory(), () => false);
    return rootIsDir ? Object.assign(systemError('ENOENT', 'open', (err as NodeJS.ErrnoException).path), { cause: err }) : err;
  }

  /** @internal */
  kill(point: KillPoint, path: string): void {
    this.#kill(point, path);
  }

  #kill(point: KillPoint, path: string): void {
    this.#opts.killPoint?.(point, path);
  }

  /** mkdir -p, then fsync the parent of every directory it created so the new entries survive a crash. */
  async #ensureDir(dir: string): Promise<void> {
    let first: string | undefined;
    try {
      first = await mkdir(dir, { recursive: true, mode: this.#opts.dirMode });
    } catch (err) {
      // A regular file where a directory should be: report it as the filesystem does deeper down (ENOTDIR).
      if (errnoOf(err) === 'EEXIST') throw systemError('ENOTDIR', 'mkdir', dir);
      throw err;
    }
    if (first === undefined) return;
    const created: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      created.push(d);
      if (d === first || dirname(d) === d) break;
    }
    for (const d of created.reverse()) await fsyncDir(dirname(d));
  }
}

/** fsync of a directory, so renames and new entries in it are durable. Filesystems that cannot do it are tolerated. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    if (!['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EBADF'].includes(errnoOf(err) ?? '')) throw err;
  } finally {
    await fh.close();
  }
}

class FsWriter implements StorageWriter {
  #state: 'open' | 'committed' | 'aborted' | 'closed' = 'open';
  #fh: FileHandle | undefined;
  #position: number;

  constructor(
    private readonly storage: FsStorage,
    readonly path: string,
    private readonly abs: string,
    private readonly pending: string,
    fh: FileHandle,
    position: number,
  ) {
    this.#fh = fh;
    this.#position = position;
  }

  get bytesWritten(): number {
    return this.#position;
  }

  #fail(err: unknown, op: StorageOp): StorageError {
    return toStorageError(err, op, this.path, this.storage.location);
  }

  #open(op: StorageOp): FileHandle {
    if (this.#state !== 'open' || !this.#fh) {
      throw new StorageError('BAD_USAGE', `writer for '${this.path}' is ${this.#state}; cannot ${op}`, op, this.path, this.storage.location);
    }
    return this.#fh;
  }

  async write(chunk: Uint8Array): Promise<void> {
    const fh = this.#open('write');
    try {
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, this.#position);
        done += bytesWritten;
        this.#position += bytesWritten;
      }
    } catch (err) {
      throw this.#fail(err, 'write');
    }
  }

  async sync(): Promise<void> {
    const fh = this.#open('sync');
    try {
      await fh.datasync();
    } catch (err) {
      throw this.#fail(err, 'sync');
    }
  }

  async commit(): Promise<void> {
    const fh = this.#open('commit');
    try {
      await fh.sync();
      this.storage.kill('commit:beforeRename', this.path);
      await fh.close();
      this.#fh = undefined;
      await rename(this.pending, this.abs);
      this.#state = 'committed';
      this.storage.kill('commit:afterRename', this.path);
      await fsyncDir(dirname(this.abs));
    } catch (err) {
      if (err instanceof SimulatedCrash) {
        await this.#fh?.close().catch(() => undefined);
        this.#fh = undefined;
        this.#state = 'closed';
        throw err;
      }
      throw this.#fail(err, 'commit');
    }
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'aborted') return;
    await this.#fh?.close().catch(() => undefined);
    this.#fh = undefined;
    this.#state = 'aborted';
    try {
      await unlink(this.pending);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw this.#fail(err, 'abort');
    }
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
  }

  async openRead(): Promise<Readable> {
    return this.storage.openAbsolute(this.pending, this.path, 'openRead', { start: 0, end: this.#position });
  }
}

/** A Readable over [start, end) of an open file, reading `chunk` bytes at a time and closing the file when done. */
class FileRangeReadable extends Readable {
  #pos: number;
  #reading = false;

  constructor(
    private readonly fh: FileHandle,
    start: number,
    private readonly end: number,
    private readonly chunk: number,
    private readonly mapError: (err: unknown) => Error,
  ) {
    super({ highWaterMark: chunk });
    this.#pos = start;
  }

  override _read(): void {
    if (this.#reading) return;
    const want = Math.min(this.chunk, this.end - this.#pos);
    if (want <= 0) {
      this.push(null);
      return;
    }
    this.#reading = true;
    const buf = Buffer.allocUnsafe(want);
    this.fh.read(buf, 0, want, this.#pos).then(
      ({ bytesRead }) => {
        this.#reading = false;
        if (bytesRead === 0) {
          this.push(null);
          return;
        }
        this.#pos += bytesRead;
        this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
      },
      (err: unknown) => {
        this.#reading = false;
        this.destroy(this.mapError(err));
      },
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.fh.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
