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
