import { ErrorCodes } from './errors.ts';
import { HEADER_SIZE, MAX_MESSAGE_SIZE_BYTES, MessageError } from './protocol.ts';

/**
 * Reassembles wire-protocol messages from TCP chunks. A message may arrive split over many chunks and one chunk may
 * hold several messages; {@link FrameReader.push} returns every message completed by a chunk, each as one Buffer
 * starting at its header.
 */
export class FrameReader {
  // Chunks are kept as a list and joined once per message, so a 48 MB message arriving in 64 KB chunks costs one copy,
  // not one per chunk.
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** @param maxMessageSizeBytes - largest accepted `messageLength` (mongod: 48,000,000) */
  constructor(private readonly maxMessageSizeBytes: number = MAX_MESSAGE_SIZE_BYTES) {}

  /** Bytes received but not yet part of a complete message. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Adds a chunk and returns the messages it completes.
   * @throws MessageError (fatal) when a header announces an impossible length; the connection must then be dropped,
   *   since there is no way to find the next message boundary.
   */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) return frames;
      const length = this.peekLength();
      if (length < HEADER_SIZE || length > this.maxMessageSizeBytes) {
        throw new MessageError(
          ErrorCodes.ProtocolError,
          `recv(): message msgLen ${length} is invalid. Min ${HEADER_SIZE} Max: ${this.maxMessageSizeBytes}`,
          true,
        );
      }
      if (this.buffered < length) return frames;
      frames.push(this.take(length));
    }
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= 4) return first.readInt32LE(0);
    return Buffer.concat(this.chunks, 4).readInt32LE(0);
  }

  private take(length: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
    const frame = all.subarray(0, length);
    const rest = all.subarray(length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }
}
