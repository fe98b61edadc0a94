/**
 * Unfinished multipart uploads of a repository on object storage: the pending files of writers under way, or left by a
 * crashed worker (repository/s3-storage.ts). `repo check` lists them as garbage; `prune`, which holds the exclusive
 * lock so no backup writes, aborts every one. A repository in a directory has none (its pending files are hidden
 * files removed with their backup).
 *
 * @module
 */
import { S3Storage, type S3PendingUpload } from './s3-storage.ts';
import type { Storage } from './storage.ts';

/** The {@link S3Storage} under a stack of decorators (RetryStorage, FaultyStorage), or undefined. */
export function s3StorageOf(storage: Storage): S3Storage | undefined {
  let s: Storage = storage;
  while (!(s instanceof S3Storage) && 'inner' in s && s.inner) s = s.inner as Storage;
  return s instanceof S3Storage ? s : undefined;
}

/** The repository's unfinished multipart uploads, oldest first (none for a directory). */
export async function pendingUploads(storage: Storage): Promise<S3PendingUpload[]> {
  const s3 = s3StorageOf(storage);
  if (!s3) return [];
  const uploads = await s3.pendingUploads();
  return uploads.sort((a, b) => (a.initiated?.getTime() ?? 0) - (b.initiated?.getTime() ?? 0) || a.path.localeCompare(b.path));
}

/** Aborts every unfinished multipart upload of the repository; returns the paths they were for. */
export async function abortPendingUploads(storage: Storage): Promise<string[]> {
  const s3 = s3StorageOf(storage);
  if (!s3) return [];
  const aborted: string[] = [];
  for (const u of await pendingUploads(storage)) {
    await s3.abortUpload(u);
    aborted.push(u.path);
  }
  return aborted;
}
