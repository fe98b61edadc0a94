/**
 * Index files of format cutpoint/v2 (docs/repository-format.md section 8): `index/<pack id>.json` describes one
 * pack, `{"format": "cutpoint/v2", "pack": "<id>", "size": <bytes>, "blobs": [{id, offset, length, rawLength}]}`. It
 * repeats the pack's header, so a backup learns which chunks the repository holds without reading any pack.
 *
 * @module
 */
import { z } from 'zod';
import { CorruptFileError } from '../errors.ts';
import { describeIssues } from '../schema.ts';
import { isChunkId } from './chunk-id.ts';
import { REPOSITORY_FORMAT_V2 } from './format.ts';
import { HEADER_ENTRY_BYTES, type PackInfo, TRAILER_BYTES } from './pack-format.ts';

/** The directory of index files. */
export const INDEX_DIR = 'index';

/** `index/<pack id>.json`. */
export function indexPath(packId: string): string {
  return `${INDEX_DIR}/${packId}.json`;
}

/** The pack id an index file's path names, or `undefined` for another file under `index/`. */
export function packIdOfIndexPath(path: string): string | undefined {
  const m = /^index\/([0-9a-f]{64})\.json$/.exec(path);
  return m?.[1];
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');
const count = z.int().nonnegative();

/** An index file. Unknown fields are kept. */
export const indexFileSchema = z.looseObject({
  format: z.literal(REPOSITORY_FORMAT_V2),
  pack: hex64,
  size: count,
  blobs: z.array(z.looseObject({ id: hex64, offset: count, length: count, rawLength: count })),
});

/** The document of the index file of a pack. */
export function encodeIndexFile(info: PackInfo): string {
  return JSON.stringify({
    format: REPOSITORY_FORMAT_V2,
    pack: info.id,
    size: info.size,
    blobs: info.blobs.map(({ id, offset, length, rawLength }) => ({ id, offset, length, rawLength })),
  });
}

/**
 * Parses an index file read from `path` (`where` is its location and path, for messages): valid JSON, the schema, the
 * pack id its name says, and blobs that tile the pack's blob area in order, as its header does. Anything else is a
 * {@link CorruptFileError} naming the file and the first offending field.
 */
export function parseIndexFile(raw: Buffer, path: string, where: string): PackInfo {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new CorruptFileError(where, '(the document)', `index file ${where} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = indexFileSchema.safeParse(value);
  if (!parsed.success) {
    const { text, field } = describeIssues(parsed.error);
    throw new CorruptFileError(where, field, `index file ${where} is invalid: ${text}`);
  }
  const doc = parsed.data;
  const named = packIdOfIndexPath(path);
  if (named !== doc.pack || !isChunkId(named)) throw new CorruptFileError(where, 'pack', `index file ${where} describes pack ${doc.pack}, not the one its name says`);
  let offset = 0;
  for (const [i, b] of doc.blobs.entries()) {
    if (b.offset !== offset) throw new CorruptFileError(where, `blobs[${i}].offset`, `index file ${where}: blob ${i} (${b.id}) is at offset ${b.offset}, expected ${offset} (blobs follow each other from 0)`);
    offset += b.length;
  }
  const expected = offset + doc.blobs.length * HEADER_ENTRY_BYTES + TRAILER_BYTES;
  if (doc.size !== expected) throw new CorruptFileError(where, 'size', `index file ${where}: pack size ${doc.size} does not match its blobs (expected ${expected})`);
  return { id: doc.pack, size: doc.size, blobs: doc.blobs.map(({ id, offset, length, rawLength }) => ({ id, offset, length, rawLength })) };
}
