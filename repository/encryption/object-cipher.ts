/**
 * The encrypted object format of an encrypted repository (docs/repository-format.md section 16): every object but
 * `cutpoint.json` and `keys/` is stored as a 32-byte header and its plaintext cut into 64 KiB segments, each sealed
 * with AES-256-GCM (the STREAM construction of Tink's streaming AEAD and of age). The object's key is derived from the
 * repository's data key, a random salt in the header and the object's path, so an object moved to another path, a
 * segment moved, dropped or reordered, or the object truncated at a segment boundary all fail authentication.
 * Segments let a reader decrypt a byte range (one chunk of a pack) without reading the whole object.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { CutpointError } from '../../common/errors.ts';

/** ASCII `cutenc`, then the layout version and log2 of the segment size. */
const MAGIC = Buffer.from('cutenc', 'ascii');
const VERSION = 1;
const SEGMENT_LOG2 = 16;
/** Plaintext bytes per segment (all but the last are full). */
export const SEGMENT_BYTES = 1 << SEGMENT_LOG2;
const SALT_BYTES = 24;
/** Header: magic (6), version (1), log2 segment size (1), salt (24). */
export const HEADER_BYTES = MAGIC.length + 2 + SALT_BYTES;
/** The GCM tag after each segment's ciphertext. */
export const TAG_BYTES = 16;
const STORED_SEGMENT = SEGMENT_BYTES + TAG_BYTES;

/**
 * The authentication of an object failed: its bytes were changed, it was truncated, moved from another path, or
 * written under another key. `OBJECT_AUTH_FAILED`, naming the object.
 */
export class AuthenticationError extends CutpointError {
  override name = 'AuthenticationError';
  constructor(
    readonly object: string,
    why: string,
  ) {
    super('OBJECT_AUTH_FAILED', `${object} failed authentication (${why}): it was modified, truncated or not written with this repository's key`, { object });
  }
}

/** Stored size of an object of `plain` plaintext bytes. */
export function storedSize(plain: number): number {
  const segments = Math.max(1, Math.ceil(plain / SEGMENT_BYTES));
  return HEADER_BYTES + plain + segments * TAG_BYTES;
}

/** Plaintext size of an object stored in `stored` bytes; `undefined` when no plaintext size gives that size. */
export function plainSize(stored: number): number | undefined {
  const body = stored - HEADER_BYTES;
  if (body < TAG_BYTES) return undefined;
  const segments = Math.ceil(body / STORED_SEGMENT);
  const last = body - (segments - 1) * STORED_SEGMENT;
  if (last < TAG_BYTES || (last === TAG_BYTES && segments > 1)) return undefined;
  return body - segments * TAG_BYTES;
}

/** The per-object key: HKDF-SHA-256 of the data key, salted with the header's salt, bound to the path. */
function objectKey(dataKey: Buffer, salt: Buffer, path: string): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, salt, Buffer.from(`cutpoint object\0${path}`, 'utf8'), 32));
}

/** Segment nonce: the segment number as 11 bytes big-endian, then 1 for the last segment, else 0. */
function nonce(index: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(index, 5, 6);
  n[11] = last ? 1 : 0;
  return n;
}

function newHeader(): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([VERSION, SEGMENT_LOG2]), randomBytes(SALT_BYTES)]);
}

/** Checks a header read back and returns its salt. */
function parseHeader(header: Buffer, object: string): Buffer {
  if (header.length < HEADER_BYTES) throw new AuthenticationError(object, `${header.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new AuthenticationError(object, 'no encrypted-object header (magic)');
  if (header[MAGIC.length] !== VERSION || header[MAGIC.length + 1] !== SEGMENT_LOG2) {
    throw new AuthenticationError(object, `unknown layout version ${header[MAGIC.length]}/${header[MAGIC.length + 1]}`);
  }
  return header.subarray(MAGIC.length + 2, HEADER_BYTES);
}

/** The sealed segment as pieces: the ciphertext, then the tag (GCM's `final` adds no bytes). */
function sealSegment(key: Buffer, header: Buffer, index: number, last: boolean, plain: Uint8Array): Buffer[] {
  const c = createCipheriv('aes-256-gcm', key, nonce(index, last));
  c.setAAD(header);
  const body = c.update(plain);
  c.final();
  return [body, c.getAuthTag()];
}

function openSegment(key: Buffer, header: Buffer, index: number, last: boolean, stored: Buffer): Buffer | undefined {
  if (stored.length < TAG_BYTES) return undefined;
  const d = createDecipheriv('aes-256-gcm', key, nonce(index, last));
  d.setAAD(header);
  d.setAuthTag(stored.subarray(stored.length - TAG_BYTES));
  try {
    const body = d.update(stored.subarray(0, stored.length - TAG_BYTES));
    d.final();
    return body;
  } catch {
    return undefined;
  }
}

/**
 * Seals objects under one data key. `object` in messages is how a failure names the object (location and path).
 */
export class ObjectCipher {
  constructor(private readonly dataKey: Buffer) {}

  /** The whole object for `plain` stored at `path`. */
  seal(path: string, plain: Uint8Array): Buffer {
    const s = this.sealer(path);
    const head = s.push(plain);
    return Buffer.concat([...head, s.finish()]);
  }

  /** A streaming sealer: push plaintext, write what it returns, then write what `finish` returns. */
  sealer(path: string): ObjectSealer {
    return new ObjectSealer(this.dataKey, path);
  }

  /** The plaintext of a whole stored object; {@link AuthenticationError} naming `object` when anything is wrong. */
  open(path: string, stored: Buffer, object: string): Buffer {
    const salt = parseHeader(stored, object);
    const header = stored.subarray(0, HEADER_BYTES);
    const plain = plainSize(stored.length);
    if (plain === undefined) throw new AuthenticationError(object, `its size ${stored.length} is not that of an encrypted object (truncated?)`);
    const key = objectKey(this.dataKey, salt, path);
    const segments = Math.max(1, Math.ceil(plain / SEGMENT_BYTES));
    const out: Buffer[] = [];
    for (let i = 0; i < segments; i++) {
      const from = HEADER_BYTES + i * STORED_SEGMENT;
      const seg = openSegment(key, header, i, i === segments - 1, stored.subarray(from, Math.min(stored.length, from + STORED_SEGMENT)));
      if (!seg) throw new AuthenticationError(object, `segment ${i} of ${segments}`);
      out.push(seg);
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out, plain);
  }

  /**
   * Plaintext bytes `[start, end)` of an object, reading only the segments that hold them: `readStored(from, to)`
   * returns stored bytes `[from, to)` (fewer at the end of the object); `header` is the object's header.
   */
  async openRange(
    path: string,
    header: Buffer,
    start: number,
    end: number | undefined,
    readStored: (from: number, to: number | undefined) => Promise<Buffer>,
    object: string,
  ): Promise<Buffer> {
    const salt = parseHeader(header, object);
    const key = objectKey(this.dataKey, salt, path);
    const hdr = header.subarray(0, HEADER_BYTES);
    const first = Math.floor(start / SEGMENT_BYTES);
    const lastWanted = end === undefined ? undefined : Math.max(first, Math.ceil(end / SEGMENT_BYTES) - 1);
    const from = HEADER_BYTES + first * STORED_SEGMENT;
    const to = lastWanted === undefined ? undefined : HEADER_BYTES + (lastWanted + 1) * STORED_SEGMENT;
    const stored = await readStored(from, to);
    // Read to the end of the object (no end, or fewer bytes than asked): its last segment must be sealed as the last.
    const toEnd = to === undefined || stored.length < to - from;
    const parts: Buffer[] = [];
    for (let i = first, off = 0; off < stored.length; i++, off += STORED_SEGMENT) {
      const seg = stored.subarray(off, off + STORED_SEGMENT);
      const lastRead = off + STORED_SEGMENT >= stored.length;
      let plain: Buffer | undefined;
      if (lastRead && (toEnd || seg.length < STORED_SEGMENT)) plain = openSegment(key, hdr, i, true, seg);
      else plain = openSegment(key, hdr, i, false, seg) ?? (lastRead ? openSegment(key, hdr, i, true, seg) : undefined);
      if (!plain) throw new AuthenticationError(object, `segment ${i}${lastRead && toEnd ? ' (the last: truncated?)' : ''}`);
      parts.push(plain);
    }
    const joined = Buffer.concat(parts);
    const skip = start - first * SEGMENT_BYTES;
    return joined.subarray(Math.min(skip, joined.length), end === undefined ? undefined : Math.max(skip, end - first * SEGMENT_BYTES));
  }
}

/** Seals one object as its plaintext arrives (the last segment is sealed by {@link finish}). */
export class ObjectSealer {
  readonly #key: Buffer;
  readonly #header = newHeader();
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #index = 0;
  #headerOut = false;
  /** Plaintext bytes pushed. */
  plainBytes = 0;

  constructor(dataKey: Buffer, path: string) {
    this.#key = objectKey(dataKey, this.#header.subarray(MAGIC.length + 2), path);
  }

  /**
   * Takes `plain` and returns the stored bytes now ready: the header and the full segments but the last. Only the
   * unsealed rest (less than a segment) is copied and kept, so the caller may reuse `plain` at once.
   */
  push(plain: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    if (!this.#headerOut) {
      out.push(this.#header);
      this.#headerOut = true;
    }
    this.plainBytes += plain.length;
    let input = Buffer.from(plain.buffer, plain.byteOffset, plain.length);
    // Complete the pending segment first, if the input goes beyond it (the last segment must be sealed as the last).
    if (this.#pendingBytes > 0 && this.#pendingBytes + input.length > SEGMENT_BYTES) {
      const need = SEGMENT_BYTES - this.#pendingBytes;
      out.push(...sealSegment(this.#key, this.#header, this.#index++, false, Buffer.concat([...this.#pending, input.subarray(0, need)])));
      this.#pending = [];
      this.#pendingBytes = 0;
      input = input.subarray(need);
    }
    if (this.#pendingBytes === 0) {
      while (input.length > SEGMENT_BYTES) {
        out.push(...sealSegment(this.#key, this.#header, this.#index++, false, input.subarray(0, SEGMENT_BYTES)));
        input = input.subarray(SEGMENT_BYTES);
      }
    }
    if (input.length) {
      this.#pending.push(Buffer.from(input));
      this.#pendingBytes += input.length;
    }
    return out.length > 1 ? [Buffer.concat(out)] : out;
  }

  /** The stored bytes that end the object (the header too, if nothing was pushed). */
  finish(): Buffer {
    const head = this.push(new Uint8Array(0));
    return Buffer.concat([...head, ...sealSegment(this.#key, this.#header, this.#index++, true, Buffer.concat(this.#pending))]);
  }
}
