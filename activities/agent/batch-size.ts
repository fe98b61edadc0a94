/**
 * How many files a copy batch holds. Every batch costs its replica-set workflow a handful of history events (the
 * activity, a progress signal, a workflow task), so a fixed batch size would make the history grow with the number of
 * files. Long lists get larger batches instead, up to a ceiling set by the resume state a batch saves every few
 * seconds (its result file: one entry per file it has copied, with the file's chunks).
 */

/** Batches a copy round is cut into by file count, at most (bytes may add more: one per `batchMaxBytes`). */
export const MAX_BATCHES_BY_FILES = 64;

/** Files in one batch, at most, however long the list (its saved result lists every file it has done). */
export const MAX_FILES_PER_BATCH = 5000;

/** Files per batch for a round of `files` files, given the configured `batchMaxFiles`. */
export function batchFileLimit(batchMaxFiles: number, files: number): number {
  const spread = Math.ceil(Math.max(0, files) / MAX_BATCHES_BY_FILES);
  return Math.max(batchMaxFiles, Math.min(MAX_FILES_PER_BATCH, spread));
}
