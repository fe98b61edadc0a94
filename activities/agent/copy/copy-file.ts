/**
 * {@link copyFile}: copies one file of a mongod's dbpath into a repository writer, exactly as the backup cursor
 * listed it, hashing the bytes stored, throttled and abortable, in constant memory, resumable after a crash.
 *
 * - A data file is copied up to its listed `fileSize` (`length`): the file may have grown past it since the cursor
 *   opened (WiredTiger appends while the copy runs), and those bytes are not part of the checkpoint. A source
 *   shorter than `length` is an error (`COPY_SOURCE_INVALID`) naming the file and both sizes.
 * - Journal files and storage.bson are copied whole (`length: 'whole'`): their size is read when the copy starts.
 *
 * Resume protocol (what the caller must persist): every `checkpointBytes`, copyFile makes the written bytes durable
 * ({@link StorageWriter.sync}) and calls `onCheckpoint(offset)`. The Temporal activity heartbeats that offset. After
 * a crash, the retried activity opens `storage.createWriter(path, {resumeFrom: offset})`; if the writer reports
 * `bytesWritten === offset`, it calls copyFile with `resume: {offset}`, otherwise (pending file lost) it starts
 * over. Node cannot serialize a hash state, so a resumed copy re-hashes the stored prefix by reading it back from
 * the repository (not from the dbpath): the final SHA-256 is that of every byte stored, as for an uninterrupted copy.
 * {@link copyToStorage} does all of this given the persisted offset.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { CutpointError } from '../../../common/errors.ts';
import type { Storage, StorageWriter } from '../../../repository/storage.ts';
import type { RateLimiter } from './rate-limiter.ts';

/** Default read size: large enough for sequential throughput, small enough for smooth throttling. */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Default distance between durable checkpoints. */
export const DEFAULT_CHECKPOINT_BYTES = 64 * 1024 * 1024;

/** Options of {@link copyFile}. */
export interface CopyFileOptions {
  /** Absolute path of the source file in the dbpath. */
  src: string;
  /** Bytes to copy (the listed `fileSize` of a data file), or `'whole'`: the file's size when the copy starts. */
  length: number | 'whole';
  /** Where the bytes go (from `Storage.createWriter`). copyFile neither commits nor closes it. */
  writer: StorageWriter;
  /** Throttle shared with the other copies of the replica set; none = unlimited. */
  limiter?: RateLimiter;
  /** Aborts the copy promptly (between chunks, and while throttled), rejecting with `signal.reason`. */
  signal?: AbortSignal;
  /** Called after each chunk is stored, with the bytes stored so far (including a resumed prefix). */
  onProgress?: (bytesDone: number) => void;
  /** Called after each durable checkpoint with the offset to persist for a resume (see the module comment). */
  onCheckpoint?: (offset: number) => void;
  /** Continue a copy: `writer` was created with `resumeFrom: offset` and holds exactly `offset` bytes. */
  resume?: { offset: number };
  /** Read size (default {@link DEFAULT_CHUNK_BYTES}); memory use is one buffer of this size. */
  chunkBytes?: number;
  /** Bytes between checkpoints (default {@link DEFAULT_CHECKPOINT_BYTES}). */
  checkpointBytes?: number;
}

/** What {@link copyFile} stored. */
export interface CopyFileResult {
  /** Bytes stored (the manifest's `size`). */
  size: number;
  /** SHA-256 of the bytes stored, lower-case hex. */
  sha256: string;
  /** Where this call started in the file (0 unless resumed). */
  resumedFrom: number;
  /** Bytes this call read from the source (excludes the re-hashed prefix). */
  bytesRead: number;
}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

function sourceError(src: string, why: string, cause?: unknown): CutpointError {
  return new CutpointError('COPY_SOURCE_INVALID', `${src}: ${why}`, { src }, cause === undefined ? undefined : { cause });
}

/** Copies `length` bytes (or the whole file) of `src` into `writer`; see the module comment. */
export async function copyFile(options: CopyFileOptions): Promise<CopyFileResult> {
  const { src, length, writer, limiter, signal, onProgress, onCheckpoint } = options;
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const checkpointBytes = options.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES;
  if (!isAbsolute(src)) throw new CutpointError('INTERNAL', `copyFile needs an absolute source path, got '${src}'`);
  if (length !== 'whole' && !(Number.isSafeInteger(length) && length >= 0)) {
    throw new CutpointError('INTERNAL', `copyFile of ${src}: length must be a non-negative integer or 'whole', got ${length}`);
  }
  if (!(Number.isSafeInteger(chunkBytes) && chunkBytes > 0)) throw new CutpointError('INTERNAL', `chunkBytes must be a positive integer, got ${chunkBytes}`);
  const start = options.resume?.offset ?? 0;
  if (writer.bytesWritten !== start) {
    throw new CutpointError(
      'INTERNAL',
      `copyFile of ${src} into ${writer.path}: the writer holds ${writer.bytesWritten} bytes but the copy ${options.resume ? `resumes at ${start}` : 'starts at 0'}`,
    );
  }
  signal?.throwIfAborted();

  let fh: FileHandle;
  try {
    fh = await open(src, 'r');
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT') throw sourceError(src, 'listed by the backup cursor but missing from the dbpath', err);
    if (errno === 'EACCES' || errno === 'EPERM') throw sourceError(src, 'permission denied: the agent must run as a user that can read the dbpath', err);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw sourceError(src, 'not a regular file');
    const target = length === 'whole' ? st.size : length;
    if (st.size < target) throw sourceError(src, `the file is ${st.size} bytes, shorter than the ${target} bytes listed by the backup cursor`);
    if (start > target) throw sourceError(src, `cannot resume at byte ${start}: the file is now ${target} bytes`);

    const hash = createHash('sha256');
    if (start > 0) {
      // Re-hash the stored prefix: Node's hash state cannot be persisted across a crash.
      let seen = 0;
      for await (const chunk of await writer.openRead()) {
        signal?.throwIfAborted();
        hash.update(chunk as Buffer);
        seen += (chunk as Buffer).length;
      }
      if (seen !== start) {
        throw new CutpointError('INTERNAL', `resuming ${writer.path}: read back ${seen} bytes of the pending file, expected ${start}`);
      }
    }

    // Two buffers: the next chunk is read while this one is hashed and written, and a checkpoint's sync runs while
    // the copy goes on (the offset is reported once the bytes before it are durable). A strictly serial loop leaves
    // the disk idle during every hash, write and sync, and copies at about two thirds of `cp`'s speed.
    const size = Math.min(chunkBytes, Math.max(1, target - start));
    const bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    let readAt = start;
    let flip = 0;
    const readNext = async (): Promise<Buffer | undefined> => {
      if (readAt >= target) return undefined;
      const buf = bufs[flip]!;
      flip ^= 1;
      const want = Math.min(buf.length, target - readAt);
      await limiter?.take(want, signal);
      const { bytesRead } = await fh.read(buf, 0, want, readAt);
      if (bytesRead === 0) {
        const now = (await fh.stat()).size;
        throw sourceError(src, `the file is ${now} bytes, shorter than the ${target} bytes listed by the backup cursor (it shrank during the copy)`);
      }
      readAt += bytesRead;
      return buf.subarray(0, bytesRead);
    };
    let offset = start;
    let sinceCheckpoint = 0;
    let syncing: Promise<void> | undefined;
    const syncFailed: unknown[] = [];
    const settle = async (p: Promise<unknown> | undefined) => {
      await p?.catch(() => undefined);
    };
    // The read ahead may fail (a cancel, a source that shrank) while this loop waits for a write: it is marked handled
    // at once, or Node would report an unhandled rejection (and end the process) before the loop gets to await it.
    const readAhead = () => {
      const p = readNext();
      p.catch(() => undefined);
      return p;
    };
    let next: Promise<Buffer | undefined> | undefined = readAhead();
    try {
      for (;;) {
        signal?.throwIfAborted();
        const chunk: Buffer | undefined = await next;
        next = undefined;
        if (!chunk) break;
        if (syncFailed.length) throw syncFailed[0];
        next = readAhead();
        // The write runs on the thread pool while this thread hashes the same (unchanging) bytes.
        const written = writer.write(chunk);
        hash.update(chunk);
        await written;
        offset += chunk.length;
        sinceCheckpoint += chunk.length;
        onProgress?.(offset);
        if (onCheckpoint && sinceCheckpoint >= checkpointBytes && offset < target) {
          await syncing;
          if (syncFailed.length) throw syncFailed[0];
          const at = offset;
          sinceCheckpoint = 0;
          syncing = writer.sync().then(
            () => onCheckpoint(at),
            (error: unknown) => {
              syncFailed.push(error);
            },
          );
        }
      }
      await syncing;
      if (syncFailed.length) throw syncFailed[0];
    } finally {
      // Nothing may touch the file handle or the writer once this returns.
      await settle(next);
      await settle(syncing);
    }
    return { size: offset, sha256: hash.digest('hex'), resumedFrom: start, bytesRead: offset - start };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Options of {@link copyToStorage}. */
export interface CopyToStorageOptions extends Omit<CopyFileOptions, 'writer' | 'resume'> {
  storage: Storage;
  /** Repository path of the stored file (`Repository.dataFilePath(...)`). */
  path: string;
  /** The last offset persisted from `onCheckpoint` by an earlier attempt, if any. */
  resumeFrom?: number;
}

/**
 * Copies `src` into `storage` at `path` and commits it: opens the writer (resuming from `resumeFrom` when the
 * pending file still holds those bytes, else from 0), runs {@link copyFile}, commits. On failure or abort the
 * pending file is kept (closed, not removed) so a retry can resume; removing a cancelled backup's `files/` removes it.
 */
export async function copyToStorage(options: CopyToStorageOptions): Promise<CopyFileResult> {
  const { storage, path, resumeFrom, ...rest } = options;
  const writer = await storage.createWriter(path, resumeFrom !== undefined && resumeFrom > 0 ? { resumeFrom } : {});
  try {
    const result = await copyFile({ ...rest, writer, ...(writer.bytesWritten > 0 ? { resume: { offset: writer.bytesWritten } } : {}) });
    await writer.commit();
    return result;
  } catch (err) {
    await writer.close().catch(() => undefined);
    throw err;
  }
}
