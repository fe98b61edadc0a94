/**
 * The storage interface under a cutpoint repository (restic's backend pattern): a flat namespace of files named by
 * repository-relative, '/'-separated paths. Backends ({@link FsStorage}, {@link MemoryStorage}, later object storage)
 * and decorators ({@link RetryStorage}, {@link FaultyStorage}) implement it; every one passes the shared conformance
 * suite in `storage.conformance.ts`. The repository layout and manifests live one level up, in `repository.ts`.
 *
 * Glossary:
 * - **path**: repository-relative, '/'-separated, e.g. `backups/<id>/rs0/files/collection-0-1.wt`. Never absolute,
 *   never `..` or `.`, no empty segment, no NUL; see {@link validatePath}.
 * - **file**: bytes stored under a path. Directories are implicit (object stores have none): a "directory" exists
 *   while a file exists beneath it, and operations never report empty directories as files.
 * - **pending file**: bytes written through a {@link StorageWriter} and not yet committed. It is invisible to
 *   `readFile`, `stat`, `exists` and `list` until `commit`; a crash leaves it invisible (and resumable).
 *
 * @module
 */
import type { Readable } from 'node:stream';
import { CutpointError, type ErrorCode } from '../common/errors.ts';

/** The operations of {@link Storage} and {@link StorageWriter}, as named in errors and fault rules. */
export type StorageOp =
  | 'writeFile'
  | 'createWriter'
  | 'write'
  | 'sync'
  | 'commit'
  | 'abort'
  | 'readFile'
  | 'openRead'
  | 'stat'
  | 'list'
  | 'listChildren'
  | 'remove';

/** What {@link Storage.stat} knows about a file. */
export interface StorageStat {
  /** Bytes stored. */
  size: number;
}

/** Options of {@link Storage.createWriter}. */
export interface CreateWriterOptions {
  /**
   * Continue the pending file of an earlier writer for the same path (one that was closed, or whose process died,
   * without commit or abort), keeping its first `resumeFrom` bytes. When no pending file exists or it holds fewer
   * bytes, the writer starts empty; check {@link StorageWriter.bytesWritten} for where it actually starts.
   * Without this option any pending file is discarded.
   */
  resumeFrom?: number;
}

/** Options of {@link Storage.openRead}. */
export interface OpenReadOptions {
  /** First byte to read (default 0). */
  start?: number;
  /** Stop before this byte (exclusive; default: end of file). */
  end?: number;
}

/**
 * Whole-range reads of one file through one handle kept open ({@link Storage.openRanges}): a pack read chunk by chunk
 * is opened once, not once per chunk. Reads may run concurrently; {@link close} once, after the last.
 */
export interface RangeReader {
  /** Bytes `[start, end)` of the file (fewer when the file is shorter). Errors as {@link Storage.openRead}'s. */
  read(start: number, end: number): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * A streaming writer for one file: bytes go to a pending file that becomes visible under its path only on
 * {@link commit}, atomically (whole or not at all).
 *
 * Ownership: a writer belongs to one caller; its methods must not be called concurrently (await each one). At most
 * one writer may exist for a path at a time: two writers for the same path share one pending file and corrupt it.
 * In cutpoint one copy activity owns the files of its batch, and a retried activity resumes the previous attempt's
 * pending file only after that attempt has stopped (Temporal cancels an attempt whose heartbeat times out).
 */
export interface StorageWriter {
  /** The path the file will have once committed. */
  readonly path: string;
  /** Bytes in the pending file: a resumed prefix plus everything written since. */
  readonly bytesWritten: number;
  /**
   * Appends `chunk`. The writer does not keep a reference to `chunk` once the promise resolves, so the caller may
   * reuse its buffer. A failed write leaves the pending file in an unknown state past the last {@link sync}.
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Makes every byte written so far durable in the pending file (fdatasync). After `sync` resolves, a crash of the
   * process or the machine keeps at least {@link bytesWritten} bytes for `createWriter(path, {resumeFrom})`.
   */
  sync(): Promise<void>;
  /**
   * Makes the file durable and visible under {@link path}, replacing any file there: fsync of the file, atomic
   * rename, fsync of the directory. Committing twice is an error; after a failed commit, call {@link abort}.
   */
  commit(): Promise<void>;
  /** Discards the pending file. Idempotent; a no-op after a successful commit. */
  abort(): Promise<void>;
  /**
   * Releases the writer's resources but keeps the pending file for a later `createWriter(path, {resumeFrom})`.
   * Idempotent; a no-op after commit or abort.
   */
  close(): Promise<void>;
  /** Reads back the pending bytes written so far (to re-hash a resumed prefix). */
  openRead(): Promise<Readable>;
}

/**
 * A place to keep repository files.
 *
 * Concurrency: a Storage is safe for concurrent use by many callers as long as no two of them write the same path at
 * once. Concurrent {@link writeFile} calls on one path are safe (each is atomic; the last rename wins) but which one
 * wins is unspecified. Readers never see a partially written file: every write is all-or-nothing. Implementations
 * must not keep references to the caller's buffers after a call returns.
 *
 * Errors: every failure is a {@link StorageError} whose message names the path and the repository and whose
 * `code` is a registry code: `DISK_FULL` (out of space), `REPO_UNUSABLE` (path under a regular file, permissions,
 * read-only filesystem), `REPO_FILE_MISSING` (reading a file that is not there), `REPO_IO` (transient, retryable),
 * `BAD_USAGE` (an invalid path).
 */
export interface Storage {
  /** Where the repository is, for messages: an absolute directory, or `memory:<name>`. */
  readonly location: string;
  /** Stores `data` under `path` atomically (temporary name in the same directory, fsync, rename, fsync of the directory), replacing any file there. */
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /** Opens a streaming writer for `path`; see {@link StorageWriter}. */
  createWriter(path: string, options?: CreateWriterOptions): Promise<StorageWriter>;
  /** The whole file. Missing: `REPO_FILE_MISSING`. */
  readFile(path: string): Promise<Buffer>;
  /** A stream of the file's bytes from `start` (inclusive) to `end` (exclusive). Missing: `REPO_FILE_MISSING`, when called. */
  openRead(path: string, options?: OpenReadOptions): Promise<Readable>;
  /**
   * Optional: opens `path` for whole-range reads through one handle ({@link RangeReader}). Missing: `REPO_FILE_MISSING`.
   * A backend without it is read through {@link openRead} per range (`openRanges` in repository/v2/read-range.ts).
   */
  openRanges?(path: string): Promise<RangeReader>;
  /** The file's size, or `undefined` when no file is at `path` (a directory is not a file). */
  stat(path: string): Promise<StorageStat | undefined>;
  /** Whether a file (not a directory) is at `path`. */
  exists(path: string): Promise<boolean>;
  /**
   * Every file beneath the directory `prefix` (`''` for the whole repository), recursively, as full repository paths,
   * sorted by UTF-16 code units. Pending files are never listed. A missing directory lists nothing.
   */
  list(prefix: string): Promise<string[]>;
  /**
   * The names of the immediate children (files and directories) of `prefix` (`''` for the root), sorted, without
   * pending files: a non-recursive listing, e.g. for the backup ids under `backups`. A directory holding no file may
   * or may not appear (object stores have no empty directories).
   */
  listChildren(prefix: string): Promise<string[]>;
  /** Removes the file or the whole directory tree at `path`. Idempotent: removing nothing succeeds. */
  remove(path: string): Promise<void>;
}

/** The codes a {@link StorageError} carries (a subset of the registry). */
export type StorageErrorCode = Extract<
  ErrorCode,
  'DISK_FULL' | 'REPO_UNUSABLE' | 'REPO_IO' | 'REPO_FILE_MISSING' | 'BAD_USAGE' | 'REPO_UNREACHABLE' | 'REPO_AUTH_FAILED' | 'REPO_BUCKET_MISSING'
>;

/** A storage failure: a registry code, the operation, the path and the repository, and the system error's code. */
export class StorageError extends CutpointError {
  override name = 'StorageError';
  declare readonly code: StorageErrorCode;
  constructor(
    code: StorageErrorCode,
    message: string,
    readonly op: StorageOp,
    readonly path: string,
    readonly location: string,
    /** The system error code (`ENOSPC`, `ENOTDIR`, …) when one caused this error. */
    readonly errno?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, { op, path, location, ...(errno ? { errno } : {}) }, options);
  }
}

/** True for a {@link StorageError}. */
export function isStorageError(err: unknown): err is StorageError {
  return err instanceof StorageError;
}

const PENDING_SUFFIX = '.cutpoint-partial';
const TEMP_MARK = '.cutpoint-tmp-';

/** The pending-file name of a writer for `name` (a backend detail, reserved: valid paths never use it). */
export function pendingName(name: string): string {
  return name + PENDING_SUFFIX;
}

/** A unique temporary name for an atomic write of `name` (reserved: valid paths never use it). */
export function tempName(name: string): string {
  return `${name}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** True for the names of pending and temporary files, which listings hide. */
export function isHiddenName(name: string): boolean {
  return name.endsWith(PENDING_SUFFIX) || name.includes(TEMP_MARK);
}

/**
 * Checks a repository-relative path and returns it: a non-empty string of '/'-separated segments, not absolute, no
 * empty segment (so no leading, trailing or doubled '/'), no '.' or '..', no NUL, and no segment that uses the names
 * reserved for pending and temporary files. Throws `BAD_USAGE` naming the path and the rule.
 */
export function validatePath(path: string, op: StorageOp = 'stat', location = ''): string {
  const fail = (why: string): never => {
    throw new StorageError(
      'BAD_USAGE',
      `invalid repository path ${JSON.stringify(path)}${location ? ` (repository ${location})` : ''}: ${why}`,
      op,
      String(path),
      location,
    );
  };
  if (typeof path !== 'string') return fail('not a string');
  if (path.length === 0) return fail('empty');
  if (path.includes('\0')) return fail('contains a NUL character');
  if (path.startsWith('/')) return fail('absolute paths are not allowed; paths are relative to the repository');
  for (const segment of path.split('/')) {
    if (segment === '') return fail("empty segment (leading, trailing or doubled '/')");
    if (segment === '.' || segment === '..') return fail(`'${segment}' segments are not allowed`);
    if (isHiddenName(segment)) return fail(`'${segment}' uses a name reserved for pending or temporary files`);
  }
  return path;
}

/** Like {@link validatePath}, but `''` (the repository root) is allowed. */
export function validatePrefix(prefix: string, op: StorageOp = 'list', location = ''): string {
  return prefix === '' ? '' : validatePath(prefix, op, location);
}

const VERBS: Record<StorageOp, string> = {
  writeFile: 'write',
  createWriter: 'create',
  write: 'write',
  sync: 'sync',
  commit: 'commit',
  abort: 'remove the pending file of',
  readFile: 'read',
  openRead: 'read',
  stat: 'stat',
  list: 'list',
  listChildren: 'list',
  remove: 'remove',
};

/** errno → registry code and a short explanation for a user. Unknown errnos are `REPO_IO` (retryable). */
const ERRNO: Record<string, [StorageErrorCode, string]> = {
  ENOSPC: ['DISK_FULL', 'the disk is full'],
  EDQUOT: ['DISK_FULL', 'the disk quota is exhausted'],
  ENOTDIR: ['REPO_UNUSABLE', 'a component of the path is a regular file, not a directory'],
  EISDIR: ['REPO_UNUSABLE', 'a directory is in the way'],
  EEXIST: ['REPO_UNUSABLE', 'a file is in the way'],
  EACCES: ['REPO_UNUSABLE', 'permission denied'],
  EPERM: ['REPO_UNUSABLE', 'operation not permitted'],
  EROFS: ['REPO_UNUSABLE', 'the filesystem is read-only'],
  ELOOP: ['REPO_UNUSABLE', 'too many symbolic links'],
  ENAMETOOLONG: ['REPO_UNUSABLE', 'the name is too long'],
  ENOENT: ['REPO_FILE_MISSING', 'no such file'],
};

/** The registry code a system error code maps to. */
export function codeForErrno(errno: string | undefined): StorageErrorCode {
  return (errno && ERRNO[errno]?.[0]) || 'REPO_IO';
}

/**
 * Wraps any error from a storage operation as a {@link StorageError} (a StorageError passes through unchanged):
 * the message says what was being done, to which path in which repository, why in plain words, and the system's own
 * message (which names the absolute path and the syscall).
 */
export function toStorageError(err: unknown, op: StorageOp, path: string, location: string): StorageError {
  if (err instanceof StorageError) return err;
  const errno = typeof (err as NodeJS.ErrnoException | null)?.code === 'string' ? (err as NodeJS.ErrnoException).code : undefined;
  const code = codeForErrno(errno);
  const plain = errno ? ERRNO[errno]?.[1] : undefined;
  const sys = err instanceof Error ? err.message : String(err);
  const where = path === '' ? `repository ${location}` : `'${path}' in repository ${location}`;
  const why = plain ? `${plain} (${sys})` : sys;
  return new StorageError(code, `cannot ${VERBS[op]} ${where}: ${why}`, op, path, location, errno, { cause: err });
}

/** An `Error` shaped like Node's system errors, for backends and decorators that simulate one. */
export function systemError(errno: string, syscall: string, path?: string): NodeJS.ErrnoException {
  const text: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    ENOTDIR: 'not a directory',
    EISDIR: 'illegal operation on a directory',
    ENOENT: 'no such file or directory',
    EIO: 'i/o error',
    EACCES: 'permission denied',
    EROFS: 'read-only file system',
  };
  const err: NodeJS.ErrnoException = new Error(`${errno}: ${text[errno] ?? 'error'}, ${syscall}${path ? ` '${path}'` : ''}`);
  err.code = errno;
  err.syscall = syscall;
  if (path) err.path = path;
  return err;
}
