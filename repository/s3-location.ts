/**
 * Repository locations (`--repo`): a directory, or `s3://<bucket>/<prefix>` for an S3 or S3-compatible object store.
 * Any other `scheme://` is refused (it would otherwise become a local directory named `scheme:`). Pure parsing: the
 * S3 client and its credentials are made in `s3-storage.ts`, from the worker's environment, never from the location.
 *
 * @module
 */
import { CutpointError } from '../common/errors.ts';

/** A parsed `s3://<bucket>/<prefix>` location. */
export interface S3Location {
  bucket: string;
  /** The key prefix of the repository, without leading or trailing '/' (`''`: the bucket's root). */
  prefix: string;
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
/** S3's bucket naming rules (3–63 characters of lowercase letters, digits, '.' and '-', starting and ending alphanumeric). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The URL scheme of `location` (`s3`), or undefined for a plain path. */
export function locationScheme(location: string): string | undefined {
  return SCHEME.exec(location)?.[1]?.toLowerCase();
}

/** True when `location` names an object store rather than a directory. */
export function isS3Location(location: string): boolean {
  return locationScheme(location) === 's3';
}

/**
 * Parses `s3://<bucket>/<prefix>`; `BAD_USAGE` naming the location and the rule it breaks. The prefix may be empty
 * and may end with '/'; its segments follow the repository path rules (no empty, '.' or '..' segment).
 */
export function parseS3Location(location: string): S3Location {
  const bad = (why: string): never => {
    throw new CutpointError('BAD_USAGE', `invalid repository location ${JSON.stringify(location)}: ${why} (expected s3://<bucket>/<prefix>)`);
  };
  if (!isS3Location(location)) return bad("it does not start with 's3://'");
  const rest = location.slice(location.indexOf('://') + 3);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = (slash < 0 ? '' : rest.slice(slash + 1)).replace(/\/$/, '');
  if (!BUCKET.test(bucket)) return bad(`'${bucket}' is not a valid bucket name (3-63 lowercase letters, digits, '.' or '-')`);
  if (prefix !== '') {
    for (const segment of prefix.split('/')) {
      if (segment === '' || segment === '.' || segment === '..') return bad(`the prefix '${prefix}' has an empty, '.' or '..' segment`);
    }
    if (prefix.includes('\0')) return bad('the prefix contains a NUL character');
  }
  return { bucket, prefix };
}

/** Refuses a `scheme://` location this version cannot store into (every scheme but `s3`). */
export function checkLocationScheme(location: string): void {
  const scheme = locationScheme(location);
  if (scheme !== undefined && scheme !== 's3') {
    throw new CutpointError(
      'BAD_USAGE',
      `unsupported repository location ${JSON.stringify(location)}: '${scheme}://' is not a storage cutpoint knows; give a directory or s3://<bucket>/<prefix>`,
    );
  }
}

/** Checks a `--repo` location before anything starts: a directory, or a well-formed `s3://<bucket>/<prefix>`. */
export function validateLocation(location: string): void {
  checkLocationScheme(location);
  if (isS3Location(location)) parseS3Location(location);
}
