/**
 * The server's file list of one replica set, kept in the repository as a work file so it stays out of workflow
 * history (docs/architecture.md, "The path of a backup"): `layout.work(id, rs, 'files.jsonl')`, one JSON object per line,
 * `{"index", "path", "size", "kind"}`, where `index` is the line number from 0, `path` is relative to the dbpath and
 * `size` is the listed `fileSize` to copy, or -1 for "the whole file at copy time" (journal files, storage.bson).
 *
 * A sidecar `files.idx.json` records the byte offset of every {@link INDEX_STRIDE}th entry, so a copy batch reads
 * entries `[from, to)` of a 100k-file list by seeking close to `from` and streaming a few lines, in constant memory.
 * The sidecar is only a hint: it is checked against the list (size, line boundary, index of the line found there)
 * and a stale or missing one falls back to a scan from the start. Both files are written atomically.
 *
 * @module
 */
import { createInterface } from 'node:readline';
import { posix } from 'node:path';
import { type FileKind, layout } from '../common/manifest.ts';
import { CorruptFileError } from './errors.ts';
import { isFileKind } from './schema.ts';
import { type Storage, StorageError, validatePath } from './storage.ts';

/** One entry of the file list. */
export interface FileListEntry {
  /** Position in the list, from 0: the key of copy batches and of the replica-set manifest's order. */
  index: number;
  /** Relative to the dbpath, '/'-separated. */
  path: string;
  /** Bytes to copy: the listed `fileSize` of a data file, or -1 to copy the whole file as it is at copy time. */
  size: number;
  kind: FileKind;
  /**
   * An incremental cursor's changed ranges of a data file, `[offset, length]` clamped to `size`, in order and not
   * overlapping (`[]`: unchanged). Absent: copy the file whole. The rest of the file is the parent backup's chunks
   * (activities/agent/copy/reuse-plan.ts).
   */
  ranges?: Array<[number, number]>;
}

/** An entry to add; the list assigns the index. */
export type FileListInput = Omit<FileListEntry, 'index'>;

/** Totals of a file list. */
export interface FileListInfo {
  /** Number of entries. */
  count: number;
  /** Sum of the sizes of the entries with a listed size (`size >= 0`). */
  listedBytes: number;
  /** Entries copied whole (`size === -1`), whose size is known only at copy time. */
  wholeFiles: number;
}

/** Entries between two sidecar offsets. */
export const INDEX_STRIDE = 256;
const WRITE_BUFFER = 256 * 1024;

interface Sidecar extends FileListInfo {
  version: 1;
  stride: number;
  /** Size of files.jsonl when the sidecar was written. */
  bytes: number;
  /** offsets[k] = byte offset of entry k * stride. */
  offsets: number[];
}

/** The file list of one replica set of one backup. Obtain it from `Repository.fileList(id, rs)`. */
export class FileList {
  /** `…/.work/files.jsonl`. */
  readonly path: string;
  /** `…/.work/files.idx.json`. */
  readonly indexPath: string;

  constructor(
    private readonly storage: Storage,
    id: string,
    rs: string,
  ) {
    this.path = layout.work(id, rs, 'files.jsonl');
    this.indexPath = layout.work(id, rs, 'files.idx.json');
  }

  #where(path = this.path): string {
    return `${this.storage.location}/${path}`;
  }

  /**
   * Writes the list (replacing any earlier one), numbering entries from 0. Streams: `entries` may be an async
   * iterable of any length. Rejects entries with an invalid path, kind or size, naming the entry.
   */
  async write(entries: Iterable<FileListInput> | AsyncIterable<FileListInput>): Promise<FileListInfo> {
    return infoOf(await this.#rewrite(entries));
  }

  /**
   * Appends entries (e.g. the journal files a `$backupCursorExtend` lists), numbering them after the existing ones.
   * Idempotent for a retried activity: an entry whose path is already listed is skipped, not added twice. Rewrites
   * the list atomically, streaming the existing entries (memory grows with `entries`, not with the list).
   */
  async append(entries: Iterable<FileListInput>): Promise<{ info: FileListInfo; added: FileListEntry[]; skipped: string[] }> {
    const fresh = new Map<string, FileListInput>();
    for (const e of entries) if (!fresh.has(e.path)) fresh.set(e.path, e);
    const skipped: string[] = [];
    const added: FileListEntry[] = [];
    const existing = this.entries();
    async function* merged(): AsyncGenerator<FileListInput> {
      let next = 0;
      for await (const e of existing) {
        if (fresh.delete(e.path)) skipped.push(e.path);
        next = e.index + 1;
        yield e;
      }
      for (const e of fresh.values()) {
        added.push({ index: next++, path: e.path, size: e.size, kind: e.kind, ...(e.ranges ? { ranges: e.ranges } : {}) });
        yield e;
      }
    }
    const sidecar = await this.#rewrite(merged());
    return { info: infoOf(sidecar), added, skipped };
  }

  /** Writes the list from `entries` atomically (temp, commit), then its sidecar. */
  async #rewrite(entries: Iterable<FileListInput> | AsyncIterable<FileListInput>): Promise<Sidecar> {
    const w = await this.storage.createWriter(this.path);
    const sidecar = newSidecar();
    let pending = '';
    try {
      for await (const input of entries) pending = await this.#append(w, sidecar, input, pending);
      if (pending) await w.write(Buffer.from(pending, 'utf8'));
      await w.commit();
    } catch (err) {
      await w.abort().catch(() => undefined);
      throw err;
    }
    await this.#writeSidecar(sidecar);
    return sidecar;
  }

  /** Totals, from the sidecar when it matches the list, else by a scan. Missing list: `undefined`. */
  async info(): Promise<FileListInfo | undefined> {
    const st = await this.storage.stat(this.path);
    if (!st) return undefined;
    const sidecar = await this.#readSidecar(st.size);
    if (sidecar) return infoOf(sidecar);
    const totals = newSidecar();
    for await (const e of this.entries()) count(totals, e, 0);
    return infoOf(totals);
  }

  /**
   * Streams entries `[from, to)` in index order, seeking near `from` through the sidecar. Memory does not grow with
   * the list. Throws `REPO_FILE_MISSING` when there is no list, `REPO_CORRUPT` naming the line of a bad entry.
   */
  async *entries(range: { from?: number; to?: number } = {}): AsyncGenerator<FileListEntry> {
    const from = Math.max(0, range.from ?? 0);
    const to = range.to ?? Infinity;
    if (to <= from) return;
    let start = { offset: 0, index: 0 };
    const st = await this.storage.stat(this.path);
    if (st) {
      const sidecar = await this.#readSidecar(st.size);
      const k = sidecar ? Math.min(Math.floor(from / sidecar.stride), sidecar.offsets.length - 1) : -1;
      if (sidecar && k > 0) start = { offset: sidecar.offsets[k]!, index: k * sidecar.stride };
    }
    if (start.offset > 0) {
      // Read from the byte before the offset: it must end the previous line, or the sidecar is stale.
      const ok = yield* this.#scan(start.offset - 1, start.index, from, to, true);
      if (ok) return;
    }
    yield* this.#scan(0, 0, from, to, false);
  }

  /** Entries `[from, to)` as an array (for one batch). */
  async read(from: number, to: number): Promise<FileListEntry[]> {
    const out: FileListEntry[] = [];
    for await (const e of this.entries({ from, to })) out.push(e);
    return out;
  }

  /** Yields entries; with `probe`, returns false (having yielded nothing) when the start point turns out wrong. */
  async *#scan(offset: number, firstIndex: number, from: number, to: number, probe: boolean): AsyncGenerator<FileListEntry, boolean> {
    const stream = await this.storage.openRead(this.path, { start: offset });
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    let expect = firstIndex;
    let boundaryChecked = !probe;
    try {
      for await (const line of lines) {
        if (!boundaryChecked) {
          boundaryChecked = true;
          if (line !== '') return false;
          continue;
        }
        if (line === '') continue;
        let entry: FileListEntry;
        try {
          entry = this.#parse(line, expect);
        } catch (err) {
          if (probe && expect === firstIndex) return false;
          throw err;
        }
        expect++;
        if (entry.index < from) continue;
        if (entry.index >= to) break;
        probe = false;
        yield entry;
      }
      return true;
    } finally {
      lines.close();
      stream.destroy();
    }
  }

  #parse(line: string, expectIndex: number): FileListEntry {
    const fail = (field: string, why: string): never => {
      throw new CorruptFileError(this.#where(), field, `file list ${this.#where()} line ${expectIndex + 1}: ${why}`);
    };
    let v: Partial<FileListEntry>;
    try {
      v = JSON.parse(line) as Partial<FileListEntry>;
    } catch (err) {
      return fail('(the line)', `not valid JSON (${(err as Error).message})`);
    }
    if (typeof v !== 'object' || v === null) return fail('(the line)', 'not a JSON object');
    if (v.index !== expectIndex) return fail('index', `index ${JSON.stringify(v.index)} where ${expectIndex} was expected`);
    if (typeof v.path !== 'string' || !validRelPath(v.path)) return fail('path', `invalid path ${JSON.stringify(v.path)}`);
    if (!Number.isSafeInteger(v.size) || v.size! < -1) return fail('size', `invalid size ${JSON.stringify(v.size)}`);
    if (!isFileKind(v.kind)) return fail('kind', `invalid kind ${JSON.stringify(v.kind)}`);
    if (v.ranges !== undefined && !validRanges(v.ranges, v.size!)) return fail('ranges', `invalid ranges ${JSON.stringify(v.ranges).slice(0, 200)}`);
    return { index: v.index, path: v.path, size: v.size!, kind: v.kind, ...(v.ranges !== undefined ? { ranges: v.ranges } : {}) };
  }

  #line(e: FileListInput, index: number): string {
    if (typeof e.path !== 'string' || !validRelPath(e.path)) {
      throw new StorageError('BAD_USAGE', `file list entry ${index}: invalid path ${JSON.stringify(e.path)} (must be relative to the dbpath, '/'-separated, without '..')`, 'write', this.path, this.storage.location);
    }
    if (!Number.isSafeInteger(e.size) || e.size < -1) {
      throw new StorageError('BAD_USAGE', `file list entry ${index} (${e.path}): invalid size ${e.size}`, 'write', this.path, this.storage.location);
    }
    if (!isFileKind(e.kind)) {
      throw new StorageError('BAD_USAGE', `file list entry ${index} (${e.path}): invalid kind ${JSON.stringify(e.kind)}`, 'write', this.path, this.storage.location);
    }
    if (e.ranges !== undefined && !validRanges(e.ranges, e.size)) {
      throw new StorageError('BAD_USAGE', `file list entry ${index} (${e.path}): invalid ranges (sorted, disjoint [offset, length] pairs within its ${e.size} bytes expected)`, 'write', this.path, this.storage.location);
    }
    return `${JSON.stringify({ index, path: e.path, size: e.size, kind: e.kind, ...(e.ranges !== undefined ? { ranges: e.ranges } : {}) })}\n`;
  }

  /** Numbers `entry` as the next one, buffers its line and flushes the buffer to `w` when it is large. */
  async #append(w: { write(c: Uint8Array): Promise<void> }, sidecar: Sidecar, entry: FileListInput, pending: string): Promise<string> {
    const line = this.#line(entry, sidecar.count);
    count(sidecar, entry, Buffer.byteLength(line));
    pending += line;
    if (pending.length < WRITE_BUFFER) return pending;
    await w.write(Buffer.from(pending, 'utf8'));
    return '';
  }

  async #writeSidecar(sidecar: Sidecar): Promise<void> {
    await this.storage.writeFile(this.indexPath, `${JSON.stringify(sidecar)}\n`);
  }

  /** The sidecar when it is readable and matches a list of `bytes` bytes; otherwise undefined (scan instead). */
  async #readSidecar(bytes: number): Promise<Sidecar | undefined> {
    let raw: Buffer;
    try {
      raw = await this.storage.readFile(this.indexPath);
    } catch (err) {
      if (err instanceof StorageError && err.code === 'REPO_FILE_MISSING') return undefined;
      throw err;
    }
    try {
      const s = JSON.parse(raw.toString('utf8')) as Sidecar;
      const valid =
        s.version === 1 &&
        s.bytes === bytes &&
        Number.isSafeInteger(s.stride) &&
        s.stride > 0 &&
        Array.isArray(s.offsets) &&
        s.offsets.length > 0 &&
        s.offsets.every((o) => Number.isSafeInteger(o) && o >= 0 && o < Math.max(bytes, 1)) &&
        Number.isSafeInteger(s.count) &&
        Number.isSafeInteger(s.listedBytes) &&
        Number.isSafeInteger(s.wholeFiles);
      return valid ? s : undefined;
    } catch {
      return undefined;
    }
  }
}

function newSidecar(): Sidecar {
  return { version: 1, stride: INDEX_STRIDE, bytes: 0, offsets: [0], count: 0, listedBytes: 0, wholeFiles: 0 };
}

function count(s: Sidecar, e: FileListInput, lineBytes: number): void {
  if (s.count > 0 && s.count % s.stride === 0) s.offsets.push(s.bytes);
  s.count++;
  s.bytes += lineBytes;
  if (e.size >= 0) s.listedBytes += e.size;
  else s.wholeFiles++;
}

function infoOf(s: Sidecar): FileListInfo {
  return { count: s.count, listedBytes: s.listedBytes, wholeFiles: s.wholeFiles };
}

/** Sorted, disjoint, non-empty `[offset, length]` ranges inside a file of `size` bytes. */
function validRanges(ranges: unknown, size: number): boolean {
  if (!Array.isArray(ranges) || size < 0) return false;
  let end = 0;
  for (const r of ranges as unknown[]) {
    if (!Array.isArray(r) || r.length !== 2) return false;
    const [offset, length] = r as [unknown, unknown];
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) return false;
    if ((offset as number) < end || (length as number) <= 0 || (offset as number) + (length as number) > size) return false;
    end = (offset as number) + (length as number);
  }
  return true;
}

function validRelPath(p: string): boolean {
  try {
    validatePath(p);
    return posix.normalize(p) === p;
  } catch {
    return false;
  }
}
