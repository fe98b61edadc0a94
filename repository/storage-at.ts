/**
 * The {@link Storage} for a repository location (`--repo`): {@link S3Storage} for `s3://<bucket>/<prefix>` (configured
 * from the process's AWS environment), {@link FsStorage} for a directory; any other `scheme://` is refused with
 * `BAD_USAGE` (repository/s3-location.ts).
 *
 * @module
 */
import { FsStorage, type FsStorageOptions } from './fs-storage.ts';
import { checkLocationScheme, isS3Location } from './s3-location.ts';
import { S3Storage, type S3StorageOptions } from './s3-storage.ts';
import type { Storage } from './storage.ts';

/** Options of {@link storageAt}, per backend. */
export interface StorageAtOptions {
  fs?: FsStorageOptions;
  s3?: S3StorageOptions;
}

/** The storage at `location`: a directory or `s3://<bucket>/<prefix>`. */
export function storageAt(location: string, options: StorageAtOptions = {}): Storage {
  checkLocationScheme(location);
  return isS3Location(location) ? new S3Storage(location, options.s3) : new FsStorage(location, options.fs);
}
