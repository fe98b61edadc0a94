/**
 * {@link RetryStorage}: a decorator that retries transient failures of another {@link Storage} with exponential
 * backoff (restic's `backend/retry`). Only errors whose registry code is retryable (`REPO_IO`) are retried; a full
 * disk, an unusable repository, a missing file or a bad path fail at once.
 *
 * Retried: every {@link Storage} operation (each is idempotent: writeFile is atomic, createWriter truncates or
 * resumes). Not retried: the methods of a {@link StorageWriter} (`write`, `sync`, `commit`): a failed fsync may
 * have dropped data the kernel will never write again, so a writer's failure is the caller's to handle, by starting
 * the file again or resuming from its last durable offset.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERRORS } from '../common/errors.ts';
import { log } from '../lib/logger.ts';
import { openRanges } from './v2/read-range.ts';
import {
  type CreateWriterOptions,
  type OpenReadOptions,
  type RangeReader,
  type Storage,
  StorageError,
  type StorageOp,
  type StorageStat,
  type StorageWriter,
} from './storage.ts';

/** What {@link RetryOptions.onRetry} is told before each new attempt. */
export interface RetryInfo {
  op: StorageOp;
  path: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  delayMs: number;
  error: StorageError;
}

/** Options of {@link RetryStorage}. */
export interface RetryOptions {
  /** Retries after the first attempt (default 5). */
  retries?: number;
  /** Delay before the first retry (default 100 ms); doubled each time, with ±20 % jitter. */
  baseDelayMs?: number;
  /** Ceiling of one delay (default 5 s). */
  maxDelayMs?: number;
  /** Called before each retry; by default a warning in the process log. */
  onRetry?: (info: RetryInfo) => void;
}

/** True when a storage error may go away on its own (its registry code is retryable). */
export function isTransient(err: unknown): err is StorageError {
  return err instanceof StorageError && ERRORS[err.code].retryable;
}

/** A {@link Storage} decorator retrying transient failures. */
export class RetryStorage implements Storage {
  readonly #opts: Required<RetryOptions>;

  constructor(
    readonly inner: Storage,
    options: RetryOptions = {},
  ) {
    this.#opts = {
      retries: 5,
      baseDelayMs: 100,
      maxDelayMs: 5000,
      onRetry: (i) =>
        log().warn(
          { op: i.op, path: i.path, location: inner.location, attempt: i.attempt, delayMs: i.delayMs, err: i.error },
          `repository ${i.op} of '${i.path}' failed (${i.error.errno ?? i.error.code}); retrying in ${i.delayMs} ms`,
        ),
      ...options,
    };
  }

  get location(): string {
    return this.inner.location;
  }

  async #retry<T>(op: StorageOp, path: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err) || attempt > this.#opts.retries) throw err;
        const base = Math.min(this.#opts.maxDelayMs, this.#opts.baseDelayMs * 2 ** (attempt - 1));
        const delayMs = Math.round(base * (0.8 + 0.4 * Math.random()));
        this.#opts.onRetry({ op, path, attempt, delayMs, error: err });
        await sleep(delayMs);
      }
    }
  }

  writeFile(path: string, data: Uint8Array | string): Promise<void> {
    return this.#retry('writeFile', path, () => this.inner.writeFile(path, data));
  }

  createWriter(path: string, options?: CreateWriterOptions): Promise<StorageWriter> {
    return this.#retry('createWriter', path, () => this.inner.createWriter(path, options));
  }

  readFile(path: string): Promise<Buffer> {
    return this.#retry('readFile', path, () => this.inner.readFile(path));
  }

  /** Retries opening; errors while the stream flows are the reader's. */
  openRead(path: string, options?: OpenReadOptions): Promise<Readable> {
    return this.#retry('openRead', path, () => this.inner.openRead(path, options));
  }

  /** Retries opening; errors of the reads are the caller's (as a stream's are). */
  openRanges(path: string): Promise<RangeReader> {
    return this.#retry('openRead', path, () => openRanges(this.inner, path));
  }

  stat(path: string): Promise<StorageStat | undefined> {
    return this.#retry('stat', path, () => this.inner.stat(path));
  }

  exists(path: string): Promise<boolean> {
    return this.#retry('stat', path, () => this.inner.exists(path));
  }

  list(prefix: string): Promise<string[]> {
    return this.#retry('list', prefix, () => this.inner.list(prefix));
  }

  listChildren(prefix: string): Promise<string[]> {
    return this.#retry('listChildren', prefix, () => this.inner.listChildren(prefix));
  }

  remove(path: string): Promise<void> {
    return this.#retry('remove', path, () => this.inner.remove(path));
  }
}
