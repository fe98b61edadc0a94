/**
 * Test helpers that speak raw wire protocol: message builders (including deliberately malformed ones), a bare TCP
 * client that collects reply frames, and a BSON element-type probe for checking what types went over the wire.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { BSON } from 'mongodb';
import type { Document } from 'mongodb';
import { crc32c } from './crc32c.ts';
import { FrameReader } from './frame-reader.ts';
import { HEADER_SIZE, OpCode } from './protocol.ts';

/** One OP_MSG section to build: a body (kind 0) or a document sequence (kind 1). */
export type SectionSpec = { kind: 0; doc: Document } | { kind: 1; id: string; docs: Document[] };

/** Builds an OP_MSG. With `checksum`, sets checksumPresent and appends a CRC-32C (`corrupt` flips one of its bits). */
export function buildOpMsg(
  sections: SectionSpec[],
  options: { requestId?: number; flags?: number; checksum?: 'valid' | 'corrupt' } = {},
): Buffer {
  const parts: Buffer[] = [];
  for (const section of sections) {
    if (section.kind === 0) {
      parts.push(Buffer.from([0]), bson(section.doc));
    } else {
      const id = Buffer.from(`${section.id}\0`, 'utf8');
      const docs = section.docs.map(bson);
      const size = Buffer.alloc(4);
      size.writeInt32LE(4 + id.length + docs.reduce((n, d) => n + d.length, 0));
      parts.push(Buffer.from([1]), size, id, ...docs);
    }
  }
  const flags = (options.flags ?? 0) | (options.checksum !== undefined ? 1 : 0);
  const flagBytes = Buffer.alloc(4);
  flagBytes.writeUInt32LE(flags >>> 0);
  const withoutSum = frame(OpCode.OP_MSG, [flagBytes, ...parts], options.requestId ?? 1, options.checksum ? 4 : 0);
  if (options.checksum === undefined) return withoutSum;
  const body = withoutSum.subarray(0, withoutSum.length - 4);
  const sum = crc32c(body) ^ (options.checksum === 'corrupt' ? 1 : 0);
  withoutSum.writeUInt32LE(sum >>> 0, withoutSum.length - 4);
  return withoutSum;
}

/** Builds an OP_QUERY on `ns` (e.g. `admin.$cmd`). */
export function buildOpQuery(ns: string, query: Document, requestId = 1): Buffer {
  const head = Buffer.alloc(4); // flags
  const skipReturn = Buffer.alloc(8);
  skipReturn.writeInt32LE(-1, 4); // numberToReturn -1, as drivers send for commands
  return frame(OpCode.OP_QUERY, [head, Buffer.from(`${ns}\0`, 'utf8'), skipReturn, bson(query)], requestId);
}

/** Builds a message with an arbitrary opcode and payload. */
export function buildRaw(opCode: number, payload: Buffer, requestId = 1): Buffer {
  return frame(opCode, [payload], requestId);
}

function frame(opCode: number, parts: Buffer[], requestId: number, trailer = 0): Buffer {
  const length = HEADER_SIZE + parts.reduce((n, p) => n + p.length, 0) + trailer;
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeInt32LE(length, 0);
  header.writeInt32LE(requestId, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(opCode, 12);
  return Buffer.concat([header, ...parts, Buffer.alloc(trailer)]);
}

function bson(doc: Document): Buffer {
  return Buffer.from(BSON.serialize(doc));
}

/** A bare TCP client: send bytes, await reply frames, observe the close. */
export class RawClient {
  private readonly frames: Buffer[] = [];
  private readonly reader = new FrameReader();
  private wake: (() => void) | undefined;
  /** Resolves when the server closes the connection (or it errors). */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.frames.push(...this.reader.push(chunk));
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        resolve();
        this.wake?.();
      });
      socket.on('error', () => undefined);
    });
  }

  /** Connects to `127.0.0.1:port`. */
  static async connect(port: number): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Writes bytes as they are. */
  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Next reply frame; rejects after `timeoutMs` or when the connection closes first. */
  async next(timeoutMs = 2000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) return frame;
      if (this.socket.destroyed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a reply');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Whether the server has closed the connection. */
  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /** Closes the client side. */
  close(): void {
    this.socket.destroy();
  }
}

/**
 * The BSON type byte of the element at `path` in a serialized document (0x10 int32, 0x12 int64, 0x01 double, ...), or
 * undefined when absent. Reads the bytes, not a deserialized value, so it shows exactly what went over the wire.
 */
export function bsonElementType(doc: Uint8Array, path: readonly string[]): number | undefined {
  const buf = Buffer.from(doc.buffer, doc.byteOffset, doc.byteLength);
  let start = 0;
  for (let depth = 0; depth < path.length; depth++) {
    const end = start + buf.readInt32LE(start) - 1;
    let pos = start + 4;
    let found: { type: number; value: number } | undefined;
    while (pos < end) {
      const type = buf[pos] ?? 0;
      const nul = buf.indexOf(0, pos + 1);
      const name = buf.toString('utf8', pos + 1, nul);
      const value = nul + 1;
      if (name === path[depth]) {
        found = { type, value };
        break;
      }
      pos = value + elementSize(buf, type, value);
    }
    if (found === undefined) return undefined;
    if (depth === path.length - 1) return found.type;
    if (found.type !== 0x03 && found.type !== 0x04) return undefined;
    start = found.value;
  }
  return undefined;
}

function elementSize(buf: Buffer, type: number, pos: number): number {
  switch (type) {
    case 0x01: // double
    case 0x09: // UTC datetime
    case 0x11: // timestamp
    case 0x12: // int64
      return 8;
    case 0x02: // string
    case 0x0d: // JavaScript code
    case 0x0e: // symbol
      return 4 + buf.readInt32LE(pos);
    case 0x03: // document
    case 0x04: // array
    case 0x0f: // code with scope
      return buf.readInt32LE(pos);
    case 0x05: // binary
      return 4 + 1 + buf.readInt32LE(pos);
    case 0x06: // undefined
    case 0x0a: // null
    case 0x7f: // max key
    case 0xff: // min key
      return 0;
    case 0x07: // ObjectId
      return 12;
    case 0x08: // boolean
      return 1;
    case 0x0b: {
      // regex: two cstrings
      const first = buf.indexOf(0, pos);
      return buf.indexOf(0, first + 1) + 1 - pos;
    }
    case 0x10: // int32
      return 4;
    case 0x13: // decimal128
      return 16;
    default:
      throw new Error(`unsupported BSON type 0x${type.toString(16)}`);
  }
}
