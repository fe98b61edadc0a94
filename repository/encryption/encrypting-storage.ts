/**
 * {@link EncryptingStorage}: the {@link Storage} a repository's code reads and writes through. It asks, before each
 * operation, whether the repository is encrypted (`resolve`): when it is, every object's contents are sealed on
 * write and authenticated and decrypted on read (`object-cipher.ts`); when not, calls pass through unchanged.
 * `cutpoint.json` and `keys/` are always stored in the clear (they say how to open the rest). Paths, listings and
 * removals pass through: names are chunk or pack hashes, backup ids and replica-set names.
 *
 * Sizes (`stat`) are plaintext sizes, and ranged reads take plaintext offsets, so the layers above (packs, the file
 * list's sidecar) work unchanged. A writer of an encrypted object cannot resume a pending file (`resumeFrom` starts
 * over), which only v1 copies used, and v1 repositories are never encrypted.
 *
 * @module
 */
import { Readable } from 'node:stream';
import { CutpointError } from '../../common/errors.ts';
import type { CreateWriterOptions, OpenReadOptions, RangeReader, Storage, StorageStat, StorageWriter } from '../storage.ts';
import { openRanges, readRange } from '../v2/read-range.ts';
import { KEYS_DIR } from './keys.ts';
import { AuthenticationError, HEADER_BYTES, type ObjectCipher, plainSize, type ObjectSealer } from './object-cipher.ts';

/** Objects stored in the clear in every repository. */
export function isClearPath(path: string): boolean {
  return path === 'cutpoint.json' || path === KEYS_DIR || path.startsWith(`${KEYS_DIR}/`);
}

/** Headers of recently read objects, for ranged reads (a stale one is detected and read again). */
const HEADER_CACHE_MAX = 4096;

export class EncryptingStorage implements Storage {
  readonly #headers = new Map<string, Buffer>();

  constructor(
    readonly inner: Storage,
    /** The object cipher when the repository is encrypted, `null` when it is not (called before every operation). */
    private readonly resolve: () => Promise<ObjectCipher | null>,
  ) {}

  get location(): string {
    return this.inner.location;
  }

  async #cipher(path: string): Promise<ObjectCipher | null> {
    if (isClearPath(path)) return null;
    return this.resolve();
  }

  #object(path: string): string {
    return `${this.inner.location}/${path}`;
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const c = await this.#cipher(path);
    if (!c) return this.inner.writeFile(path, data);
    await this.inner.writeFile(path, c.seal(path, typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
  }

  async createWriter(path: string, options?: CreateWriterOptions): Promise<StorageWriter> {
    const c = await this.#cipher(path);
    if (!c) return this.inner.createWriter(path, options);
    return new SealingWriter(await this.inner.createWriter(path), c.sealer(path));
  }

  async readFile(path: string): Promise<Buffer> {
    const c = await this.#cipher(path);
    const stored = await this.inner.readFile(path);
    return c ? c.open(path, stored, this.#object(path)) : stored;
  }

  async openRead(path: string, options: OpenReadOptions = {}): Promise<Readable> {
    const c = await this.#cipher(path);
    if (!c) return this.inner.openRead(path, options);
    const start = options.start ?? 0;
    if (start === 0 && options.end === undefined) return Readable.from([await this.readFile(path)]);
    const read = async (header: Buffer) =>
      c.openRange(path, header, start, options.end, (from, to) => readStored(this.inner, path, from, to), this.#object(path));
    const cached = this.#headers.get(path);
    if (cached) {
      try {
        return Readable.from([await read(cached)]);
      } catch (err) {
        // The object may have been rewritten since (a new salt): read its header again.
        if (!(err instanceof AuthenticationError)) throw err;
        this.#headers.delete(path);
      }
    }
    const header = await readRange(this.inner, path, 0, HEADER_BYTES);
    if (this.#headers.size >= HEADER_CACHE_MAX) this.#headers.clear();
    this.#headers.set(path, header);
    return Readable.from([await read(header)]);
  }

  /** In the clear, the inner storage's handle; encrypted, each read a ranged {@link openRead} (it decrypts the range). */
  async openRanges(path: string): Promise<RangeReader> {
    if (!(await this.#cipher(path))) return openRanges(this.inner, path);
    return { read: (start, end) => readRange(this, path, start, end), close: async () => undefined };
  }

  async stat(path: string): Promise<StorageStat | undefined> {
    const st = await this.inner.stat(path);
    if (!st || !(await this.#cipher(path))) return st;
    const size = plainSize(st.size);
    if (size === undefined) throw new AuthenticationError(this.#object(path), `its size ${st.size} is not that of an encrypted object (truncated?)`);
    return { ...st, size };
  }

  // Names pass through, but only once the repository opens: a wrong password lists and removes nothing either.
  async exists(path: string): Promise<boolean> {
    await this.#cipher(path);
    return this.inner.exists(path);
  }

  async list(prefix: string): Promise<string[]> {
    if (prefix !== '') await this.#cipher(prefix);
    return this.inner.list(prefix);
  }

  async listChildren(prefix: string): Promise<string[]> {
    if (prefix !== '') await this.#cipher(prefix);
    return this.inner.listChildren(prefix);
  }

  async remove(path: string): Promise<void> {
    await this.#cipher(path);
    this.#headers.delete(path);
    return this.inner.remove(path);
  }
}

async function readStored(storage: Storage, path: string, start: number, end: number | undefined): Promise<Buffer> {
  if (end !== undefined) return readRange(storage, path, start, end);
  const parts: Buffer[] = [];
  for await (const piece of await storage.openRead(path, { start })) parts.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array));
  return Buffer.concat(parts);
}

/** A writer that seals segments as they fill; the last one at commit. */
class SealingWriter implements StorageWriter {
  constructor(
    private readonly inner: StorageWriter,
    private readonly sealer: ObjectSealer,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  get bytesWritten(): number {
    return this.sealer.plainBytes;
  }

  async write(chunk: Uint8Array): Promise<void> {
    for (const piece of this.sealer.push(chunk)) await this.inner.write(piece);
  }

  /** Makes the sealed segments durable (the unsealed tail is not: an encrypted object cannot be resumed). */
  sync(): Promise<void> {
    return this.inner.sync();
  }

  async commit(): Promise<void> {
    await this.inner.write(this.sealer.finish());
    await this.inner.commit();
  }

  abort(): Promise<void> {
    return this.inner.abort();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  openRead(): Promise<Readable> {
    throw new CutpointError('INTERNAL', `reading back a pending encrypted object (${this.inner.path}) is not supported`);
  }
}
