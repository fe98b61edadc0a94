/**
 * {@link MemoryStorage}: a {@link Storage} in process memory, for tests. It behaves like {@link FsStorage} where the
 * conformance suite looks (atomic commits, invisible pending files that survive a "crash" for resume, a file cannot
 * sit where a directory is or under another file), and copies every buffer in and out so callers cannot alias its
 * contents.
 *
 * @module
 */
import { Readable } from 'node:stream';
import {
  type CreateWriterOptions,
  type OpenReadOptions,
  type Storage,
  StorageError,
  type StorageOp,
  type StorageStat,
  type StorageWriter,
  systemError,
  toStorageError,
  validatePath,
  validatePrefix,
} from './storage.ts';

const READ_CHUNK = 64 * 1024;

/** An in-memory {@link Storage}. Pending files live in a separate map, as a crash-surviving temp file would. */
export class MemoryStorage implements Storage {
  readonly location: string;
  readonly #files = new Map<string, Buffer>();
  /** Number of files beneath each implicit directory. */
  readonly #dirs = new Map<string, number>();
  /** @internal Pending (uncommitted) files by path. */
  readonly pending = new Map<string, PendingFile>();

  constructor(name = 'test') {
    this.location = `memory:${name}`;
  }

  #fail(errno: string, syscall: string, op: StorageOp, path: string): StorageError {
    return toStorageError(systemError(errno, syscall, `${this.location}/${path}`), op, path, this.location);
  }

  /** @internal Throws as the filesystem would when `path` cannot hold a file (under a file, or on a directory). */
  checkPlace(path: string, op: StorageOp, forCommit: boolean): void {
    const segments = path.split('/');
    for (let n = 1; n < segments.length; n++) {
      if (this.#files.has(segments.slice(0, n).join('/'))) throw this.#fail('ENOTDIR', 'mkdir', op, path);
    }
    if (forCommit && this.#dirs.has(path)) throw this.#fail('EISDIR', 'rename', op, path);
  }

  /** @internal Stores a committed file. */
  put(path: string, data: Buffer, op: StorageOp): void {
    this.checkPlace(path, op, true);
    if (!this.#files.has(path)) {
      const segments = path.split('/');
      for (let n = 1; n < segments.length; n++) {
        const dir = segments.slice(0, n).join('/');
        this.#dirs.set(dir, (this.#dirs.get(dir) ?? 0) + 1);
      }
    }
    this.#files.set(path, data);
  }

  #delete(path: string): void {
    if (!this.#files.delete(path)) return;
    const segments = path.split('/');
    for (let n = 1; n < segments.length; n++) {
      const dir = segments.slice(0, n).join('/');
      const left = (this.#dirs.get(dir) ?? 1) - 1;
      if (left === 0) this.#dirs.delete(dir);
      else this.#dirs.set(dir, left);
    }
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    validatePath(path, 'writeFile', this.location);
    this.put(path, typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data), 'writeFile');
  }

  async createWriter(path: string, options: CreateWriterOptions = {}): Promise<StorageWriter> {
    validatePath(path, 'createWriter', this.location);
    const { resumeFrom } = options;
    if (resumeFrom !== undefined && !(Number.isSafeInteger(resumeFrom) && resumeFrom >= 0)) {
      throw new StorageError('BAD_USAGE', `resumeFrom must be a non-negative integer, got ${resumeFrom} (writing '${path}')`, 'createWriter', path, this.location);
    }
    this.checkPlace(path, 'createWriter', false);
    const old = this.pending.get(path);
    const keep = resumeFrom !== undefined && old && old.length >= resumeFrom ? old.bytes().subarray(0, resumeFrom) : Buffer.alloc(0);
    this.pending.set(path, new PendingFile(keep));
    return new MemoryWriter(this, path);
  }

  async readFile(path: string): Promise<Buffer> {
    validatePath(path, 'readFile', this.location);
    const data = this.#files.get(path);
    if (!data) throw this.#fail(this.#dirs.has(path) ? 'EISDIR' : 'ENOENT', 'open', 'readFile', path);
    return Buffer.from(data);
  }

  async openRead(path: string, options: OpenReadOptions = {}): Promise<Readable> {
    validatePath(path, 'openRead', this.location);
    const data = this.#files.get(path);
    if (!data) throw this.#fail(this.#dirs.has(path) ? 'EISDIR' : 'ENOENT', 'open', 'openRead', path);
    return rangeStream(data, options, path, 'openRead', this.location);
  }

  async stat(path: string): Promise<StorageStat | undefined> {
    validatePath(path, 'stat', this.location);
    const data = this.#files.get(path);
    return data ? { size: data.length } : undefined;
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix, 'list', this.location);
    const under = prefix === '' ? '' : `${prefix}/`;
    return [...this.#files.keys()].filter((k) => k.startsWith(under)).sort();
  }

  async listChildren(prefix: string): Promise<string[]> {
    validatePrefix(prefix, 'listChildren', this.location);
    const under = prefix === '' ? '' : `${prefix}/`;
    const names = new Set<string>();
    for (const k of this.#files.keys()) {
      if (k.startsWith(under)) names.add(k.slice(under.length).split('/')[0]!);
    }
    return [...names].sort();
  }

  async remove(path: string): Promise<void> {
    validatePath(path, 'remove', this.location);
    const under = `${path}/`;
    for (const k of [...this.#files.keys()]) if (k === path || k.startsWith(under)) this.#delete(k);
    for (const k of [...this.pending.keys()]) if (k === path || k.startsWith(under)) this.pending.delete(k);
  }

  /** Total bytes of committed files (for tests). */
  get totalBytes(): number {
    let n = 0;
    for (const b of this.#files.values()) n += b.length;
    return n;
  }
}

function rangeStream(data: Buffer, options: OpenReadOptions, path: string, op: StorageOp, location: string): Readable {
  const start = options.start ?? 0;
  const end = Math.min(options.end ?? data.length, data.length);
  if (!(Number.isSafeInteger(start) && start >= 0) || (options.end !== undefined && !(Number.isSafeInteger(options.end) && options.end >= start))) {
    throw new StorageError('BAD_USAGE', `invalid range start=${options.start} end=${options.end} reading '${path}'`, op, path, location);
  }
  function* chunks(): Generator<Buffer> {
    for (let p = start; p < end; p += READ_CHUNK) yield Buffer.from(data.subarray(p, Math.min(end, p + READ_CHUNK)));
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** @internal Chunks of a pending file (appending stays linear in the bytes written). */
export class PendingFile {
  readonly #chunks: Buffer[] = [];
  length = 0;
  constructor(initial?: Buffer) {
    if (initial?.length) this.append(initial);
  }
  append(chunk: Uint8Array): void {
    this.#chunks.push(Buffer.from(chunk));
    this.length += chunk.length;
  }
  bytes(): Buffer {
    if (this.#chunks.length !== 1) {
      const all = Buffer.concat(this.#chunks, this.length);
      this.#chunks.splice(0, this.#chunks.length, all);
    }
    return this.#chunks[0] ?? Buffer.alloc(0);
  }
}

class MemoryWriter implements StorageWriter {
  #state: 'open' | 'committed' | 'aborted' | 'closed' = 'open';

  constructor(
    private readonly storage: MemoryStorage,
    readonly path: string,
  ) {}

  get bytesWritten(): number {
    return this.storage.pending.get(this.path)?.length ?? 0;
  }

  #check(op: StorageOp): PendingFile {
    const data = this.storage.pending.get(this.path);
    if (this.#state !== 'open') {
      throw new StorageError('BAD_USAGE', `writer for '${this.path}' is ${this.#state}; cannot ${op}`, op, this.path, this.storage.location);
    }
    if (!data) {
      // The pending file was removed under the writer (e.g. `remove` of its directory), as unlink would on disk.
      throw toStorageError(systemError('ENOENT', 'write', this.path), op, this.path, this.storage.location);
    }
    return data;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#check('write').append(chunk);
  }

  async sync(): Promise<void> {
    this.#check('sync');
  }

  async commit(): Promise<void> {
    const data = this.#check('commit');
    this.storage.put(this.path, data.bytes(), 'commit');
    this.storage.pending.delete(this.path);
    this.#state = 'committed';
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'aborted') return;
    this.#state = 'aborted';
    this.storage.pending.delete(this.path);
  }

  async close(): Promise<void> {
    if (this.#state === 'open') this.#state = 'closed';
  }

  async openRead(): Promise<Readable> {
    const data = this.storage.pending.get(this.path)?.bytes() ?? Buffer.alloc(0);
    return rangeStream(data, {}, this.path, 'openRead', this.storage.location);
  }
}
