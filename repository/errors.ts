/**
 * Errors of the repository layer above storage (storage failures are {@link StorageError}s, in `storage.ts`).
 *
 * @module
 */
import { CutpointError } from '../common/errors.ts';

/** A repository file that cannot be trusted: `REPO_CORRUPT`, naming the file and the first offending field. */
export class CorruptFileError extends CutpointError {
  override name = 'CorruptFileError';
  constructor(
    /** Where the file is: the repository location and the file's path. */
    readonly file: string,
    /** The first offending field (`files[12].sha256`), or a description like `(the document)`. */
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('REPO_CORRUPT', message, { file, field }, options);
  }
}

/**
 * A pack file (format cutpoint/v2, docs/repository-format.md section 7) whose trailer or header cannot be trusted: truncated,
 * tampered with, or not a pack. `REPO_CORRUPT`, naming the pack (location and path) and the offending part
 * (`trailer.magic`, `header`, …).
 */
export class CorruptPackError extends CorruptFileError {
  override name = 'CorruptPackError';
}

/**
 * A chunk whose stored bytes do not give back its plaintext (format cutpoint/v2): the ranged read of its pack came
 * back short, its blob does not decompress, or the plaintext's length or hash differs from what the index records.
 * `CHECKSUM_MISMATCH`, naming the chunk id, the pack and what is wrong.
 */
export class CorruptChunkError extends CutpointError {
  override name = 'CorruptChunkError';
  constructor(
    /** The chunk id (64 hex) the index promised. */
    readonly chunk: string,
    /** The pack's repository path (`data/ab/ab…`). */
    readonly pack: string,
    /** The repository location, for messages. */
    readonly location: string,
    /** What is wrong, in plain words. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('CHECKSUM_MISMATCH', `chunk ${chunk} in pack '${pack}' of repository ${location} is damaged: ${reason}`, { chunk, pack, location }, options);
  }
}

/**
 * A chunk the repository should hold but does not (format cutpoint/v2): no index file names it, or the pack its index
 * names is gone. `REPO_FILE_MISSING`, naming the chunk and (when an index names one) the pack.
 */
export class MissingChunkError extends CutpointError {
  override name = 'MissingChunkError';
  constructor(
    readonly chunk: string,
    /** The pack's repository path, or `undefined` when no index names the chunk. */
    readonly pack: string | undefined,
    readonly location: string,
    options?: { cause?: unknown },
  ) {
    super(
      'REPO_FILE_MISSING',
      pack === undefined
        ? `chunk ${chunk} is not in any index file of repository ${location} (a backup references a chunk that was never stored, or its index was removed)`
        : `chunk ${chunk} is missing: its pack '${pack}' is not in repository ${location} (removed, or never written)`,
      pack === undefined ? { chunk, location } : { chunk, pack, location },
      options,
    );
  }
}
