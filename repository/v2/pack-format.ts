/**
 * The byte layout of a pack file, format cutpoint/v2 (docs/repository-format.md section 7):
 *
 * ```
 * blob 0 | blob 1 | … | blob n-1 | header (n × 40 bytes) | trailer (48 bytes)
 * header entry: chunk id (32 bytes, the raw SHA-256) | blob length (u32 LE) | plaintext length (u32 LE)
 * trailer:      header length (u32 LE) | n (u32 LE) | SHA-256 of the header (32 bytes) | "cutpack" | version (1 byte, = 1)
 * ```
 *
 * Blobs are zstd frames placed back to back from offset 0, so offsets follow from the lengths. Pure functions: no I/O.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { ChunkId } from './chunk-id.ts';

/** Bytes of one header entry. */
export const HEADER_ENTRY_BYTES = 40;
/** Bytes of the trailer. */
export const TRAILER_BYTES = 48;
/** The magic at trailer bytes 40-46 (ASCII `cutpack`). */
export const PACK_MAGIC = Buffer.from('cutpack', 'ascii');
/** The pack layout version at trailer byte 47. */
export const PACK_VERSION = 1;
/** Largest blob or plaintext length a header entry can hold. */
export const MAX_BLOB_BYTES = 0xffffffff;

/** The compressed bytes a pack is filled to before it is written (the last blob may overshoot it). */
export const PACK_TARGET_BYTES = 16 * 1024 * 1024;

/** A blob in a pack: the chunk it holds, where its zstd frame is, its length, and the plaintext's length. */
export interface PackedBlob {
  id: ChunkId;
  offset: number;
  length: number;
  rawLength: number;
}

/** A pack as written: its id (SHA-256 of the whole file), its size in bytes and its blobs in pack order. */
export interface PackInfo {
  id: string;
  size: number;
  blobs: PackedBlob[];
}

/** The header of a pack holding `blobs` (in pack order). */
export function encodeHeader(blobs: readonly PackedBlob[]): Buffer {
  const header = Buffer.alloc(blobs.length * HEADER_ENTRY_BYTES);
  blobs.forEach((b, i) => {
    const at = i * HEADER_ENTRY_BYTES;
    header.write(b.id, at, 32, 'hex');
    header.writeUInt32LE(b.length, at + 32);
    header.writeUInt32LE(b.rawLength, at + 36);
  });
  return header;
}

/** The trailer that ends a pack whose header is `header`. */
export function encodeTrailer(header: Buffer): Buffer {
  const trailer = Buffer.alloc(TRAILER_BYTES);
  trailer.writeUInt32LE(header.length, 0);
  trailer.writeUInt32LE(header.length / HEADER_ENTRY_BYTES, 4);
  createHash('sha256').update(header).digest().copy(trailer, 8);
  PACK_MAGIC.copy(trailer, 40);
  trailer.writeUInt8(PACK_VERSION, 47);
  return trailer;
}

/** What a trailer says, or the field that is wrong and why. */
export type TrailerResult = { ok: true; headerLength: number; count: number; headerSha256: Buffer } | { ok: false; field: string; why: string };

/** Parses the last {@link TRAILER_BYTES} bytes of a pack of `packSize` bytes. */
export function decodeTrailer(trailer: Buffer, packSize: number): TrailerResult {
  if (trailer.length !== TRAILER_BYTES) return { ok: false, field: 'trailer', why: `the pack is ${packSize} bytes, shorter than its ${TRAILER_BYTES}-byte trailer (truncated?)` };
  if (!trailer.subarray(40, 47).equals(PACK_MAGIC)) {
    return { ok: false, field: 'trailer.magic', why: `it does not end with a pack trailer (no '${PACK_MAGIC.toString('ascii')}' magic): truncated, or not a pack` };
  }
  const version = trailer.readUInt8(47);
  if (version !== PACK_VERSION) return { ok: false, field: 'trailer.version', why: `pack version ${version}, this cutpoint reads version ${PACK_VERSION}` };
  const headerLength = trailer.readUInt32LE(0);
  const count = trailer.readUInt32LE(4);
  if (headerLength !== count * HEADER_ENTRY_BYTES) {
    return { ok: false, field: 'trailer.headerLength', why: `header length ${headerLength} does not fit ${count} entries of ${HEADER_ENTRY_BYTES} bytes` };
  }
  if (headerLength + TRAILER_BYTES > packSize) {
    return { ok: false, field: 'trailer.headerLength', why: `header length ${headerLength} exceeds the pack's ${packSize} bytes (truncated?)` };
  }
  return { ok: true, headerLength, count, headerSha256: Buffer.from(trailer.subarray(8, 40)) };
}

/** What a header says, or the field that is wrong and why. */
export type HeaderResult = { ok: true; blobs: PackedBlob[] } | { ok: false; field: string; why: string };

/** Parses and checks a header against its trailer's checksum and the pack's size. */
export function decodeHeader(header: Buffer, headerSha256: Buffer, packSize: number): HeaderResult {
  if (!createHash('sha256').update(header).digest().equals(headerSha256)) {
    return { ok: false, field: 'header', why: "the header's SHA-256 differs from the one in the trailer (damaged or tampered with)" };
  }
  const blobs: PackedBlob[] = [];
  let offset = 0;
  for (let at = 0; at < header.length; at += HEADER_ENTRY_BYTES) {
    const length = header.readUInt32LE(at + 32);
    blobs.push({ id: header.toString('hex', at, at + 32), offset, length, rawLength: header.readUInt32LE(at + 36) });
    offset += length;
  }
  const blobBytes = packSize - header.length - TRAILER_BYTES;
  if (offset !== blobBytes) {
    return { ok: false, field: 'header', why: `its blobs add up to ${offset} bytes, but ${blobBytes} bytes precede the header` };
  }
  return { ok: true, blobs };
}
