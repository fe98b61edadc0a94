/**
 * {@link FaultyStorage}: a decorator that injects failures into another {@link Storage}, for tests of disk-full,
 * unusable-repository and transient-error handling. With no rules it passes everything through (and passes the
 * conformance suite), counting the bytes written and read.
 *
 * Injected failures are built from simulated system errors and mapped by {@link toStorageError}, so callers see
 * exactly the {@link StorageError} a real backend would raise (e.g. ENOSPC → `DISK_FULL`, naming the path).
 *
 * @module
 */
import { pipeline, type Readable, Transform } from 'node:stream';
import {
  type CreateWriterOptions,
  type OpenReadOptions,
  type Storage,
  type StorageOp,
  type StorageStat,
  type StorageWriter,
  systemError,
  toStorageError,
} from './storage.ts';

/** One injected failure. */
export interface FaultRule {
  /** Operations it applies to (default: all, including the writer's `write`, `sync` and `commit`). */
  ops?: StorageOp[];
  /** Paths it applies to: an exact path or a RegExp (default: all). */
  path?: string | RegExp;
  /** The system error code to raise: `EIO` (transient), `ENOSPC`, `EACCES`, `ENOTDIR`, … */
  errno: string;
  /** How many times it fires before it disarms (default: forever). */
  times?: number;
}

/** Operations to hold until released: see {@link FaultyStorage.pause}. */
export interface PauseRule {
  /** Operations it applies to (default: all of writeFile, createWriter, readFile, remove). */
  ops?: Array<Extract<StorageOp, 'writeFile' | 'createWriter' | 'readFile' | 'remove'>>;
  /** Paths it applies to: an exact path or a RegExp (default: all). */
  path?: string | RegExp;
  /** How many matching operations pass before it holds (default 0: it holds the first). */
  after?: number;
}

/** Options of {@link FaultyStorage}. */
export interface FaultyStorageOptions {
  /**
   * The disk "fills up" after `bytes` bytes written through this decorator (writeFile and writers together): the
   * write that crosses the limit stores the part that fits, then fails with `errno` (default ENOSPC), as a real disk
   * would; every later write fails too.
   */
  failAfterBytes?: { bytes: number; errno?: string };
  /** Failures to inject; see {@link FaultRule}. */
  rules?: FaultRule[];
}

const SYSCALL: Record<StorageOp, string> = {
  writeFile: 'write',
  createWriter: 'open',
  write: 'write',
  sync: 'fdatasync',
  commit: 'rename',
  abort: 'unlink',
  readFile: 'open',
  openRead: 'open',
  stat: 'stat',
  list: 'scandir',
  listChildren: 'scandir',
  remove: 'rm',
};

/** A {@link Storage} decorator that fails on command. */
export class FaultyStorage implements Storage {
  readonly #rules: Array<FaultRule & { left: number }> = [];
  readonly #pauses = new Set<PauseRule & { released: Promise<void>; held: number; passed: number }>();
  #failAfter: { bytes: number; errno: string } | undefined;
  /** Bytes written through this decorator so far (including the part of a failed write that fit). */
  bytesWritten = 0;
  /** Bytes read through this decorator so far (readFile and openRead streams). */
  bytesRead = 0;
  /** Operations seen, in order (op and path), for assertions. */
  readonly calls: Array<{ op: StorageOp; path: string }> = [];

  constructor(
    readonly inner: Storage,
    options: FaultyStorageOptions = {},
  ) {
    for (const r of options.rules ?? []) this.addFault(r);
    if (options.failAfterBytes) this.failAfterBytes(options.failAfterBytes.bytes, options.failAfterBytes.errno);
  }

  get location(): string {
    return this.inner.location;
  }

  /** Arms another failure. */
  addFault(rule: FaultRule): void {
    this.#rules.push({ ...rule, left: rule.times ?? Infinity });
  }

  /** Fills the "disk" after `bytes` more bytes in total (counting from the start, see {@link bytesWritten}). */
  failAfterBytes(bytes: number, errno = 'ENOSPC'): void {
    this.#failAfter = { bytes, errno };
  }

  /**
   * Holds matching operations before they start until the returned `release` is called (a slow or stuck disk, or
   * a test holding one phase of a backup in place). `held()` tells how many operations have waited so far.
   */
  pause(rule: PauseRule): { release: () => void; held: () => number } {
    let release!: () => void;
    const entry = { ...rule, released: new Promise<void>((r) => (release = r)), held: 0, passed: 0 };
    this.#pauses.add(entry);
    return {
      release: () => {
        this.#pauses.delete(entry);
        release();
      },
      held: () => entry.held,
    };
  }

  /** @internal Waits while a pause rule matches. */
  async waitIfPaused(op: StorageOp, path: string): Promise<void> {
    for (const p of [...this.#pauses]) {
      if (p.ops && !p.ops.includes(op as never)) continue;
      if (p.path !== undefined && (typeof p.path === 'string' ? p.path !== path : !p.path.test(path))) continue;
      if (p.passed < (p.after ?? 0)) {
        p.passed++;
        continue;
      }
      p.held++;
      await p.released;
    }
  }

  /** Back to pass-through. */
  clearFaults(): void {
    this.#rules.length = 0;
    this.#failAfter = undefined;
  }

  /** @internal Throws if a rule matches. */
  check(op: StorageOp, path: string): void {
    this.calls.push({ op, path });
    for (const r of this.#rules) {
      if (r.left <= 0) continue;
      if (r.ops && !r.ops.includes(op)) continue;
      if (r.path !== undefined && (typeof r.path === 'string' ? r.path !== path : !r.path.test(path))) continue;
      r.left--;
      throw this.error(r.errno, op, path);
    }
  }

  /** @internal The StorageError a real backend would raise for `errno`. */
  error(errno: string, op: StorageOp, path: string): Error {
    return toStorageError(systemError(errno, SYSCALL[op], `${this.location}/${path}`), op, path, this.location);
  }

  /** @internal How many of `n` bytes fit before the disk is full (all of them when no limit is set). */
  room(n: number): { fits: number; errno?: string } {
    if (!this.#failAfter) return { fits: n };
    const left = Math.max(0, this.#failAfter.bytes - this.bytesWritten);
    return n <= left ? { fits: n } : { fits: left, errno: this.#failAfter.errno };
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    await this.waitIfPaused('writeFile', path);
    this.check('writeFile', path);
    const n = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const { errno } = this.room(n);
    // An atomic write that does not fit leaves nothing behind (its temporary file is removed).
    if (errno) throw this.error(errno, 'writeFile', path);
    await this.inner.writeFile(path, data);
    this.bytesWritten += n;
  }

  async createWriter(path: string, options?: CreateWriterOptions): Promise<StorageWriter> {
    await this.waitIfPaused('createWriter', path);
    this.check('createWriter', path);
    return new FaultyWriter(this, await this.inner.createWriter(path, options));
  }

  async readFile(path: string): Promise<Buffer> {
    await this.waitIfPaused('readFile', path);
    this.check('readFile', path);
    const data = await this.inner.readFile(path);
    this.bytesRead += data.length;
    return data;
  }

  async openRead(path: string, options?: OpenReadOptions): Promise<Readable> {
    this.check('openRead', path);
    return this.count(await this.inner.openRead(path, options));
  }

  /** @internal Counts the bytes a consumer pulls through `stream`; errors and early destroys propagate both ways. */
  count(stream: Readable): Readable {
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.bytesRead += chunk.length;
        cb(null, chunk);
      },
    });
    return pipeline(stream, counter, () => undefined);
  }

  async stat(path: string): Promise<StorageStat | undefined> {
    this.check('stat', path);
    return this.inner.stat(path);
  }

  async exists(path: string): Promise<boolean> {
    this.check('stat', path);
    return this.inner.exists(path);
  }

  async list(prefix: string): Promise<string[]> {
    this.check('list', prefix);
    return this.inner.list(prefix);
  }

  async listChildren(prefix: string): Promise<string[]> {
    this.check('listChildren', prefix);
    return this.inner.listChildren(prefix);
  }

  async remove(path: string): Promise<void> {
    await this.waitIfPaused('remove', path);
    this.check('remove', path);
    return this.inner.remove(path);
  }
}

class FaultyWriter implements StorageWriter {
  constructor(
    private readonly storage: FaultyStorage,
    private readonly inner: StorageWriter,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  get bytesWritten(): number {
    return this.inner.bytesWritten;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.storage.check('write', this.path);
    const { fits, errno } = this.storage.room(chunk.length);
    if (fits > 0) {
      await this.inner.write(fits === chunk.length ? chunk : chunk.subarray(0, fits));
      this.storage.bytesWritten += fits;
    }
    if (errno) throw this.storage.error(errno, 'write', this.path);
  }

  async sync(): Promise<void> {
    this.storage.check('sync', this.path);
    return this.inner.sync();
  }

  async commit(): Promise<void> {
    this.storage.check('commit', this.path);
    return this.inner.commit();
  }

  async abort(): Promise<void> {
    this.storage.check('abort', this.path);
    return this.inner.abort();
  }

  async close(): Promise<void> {
    return this.inner.close();
  }

  async openRead(): Promise<Readable> {
    return this.storage.count(await this.inner.openRead());
  }
}
