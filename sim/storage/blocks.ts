import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { StorageCodes, StorageError } from './errors.ts';

/**
 * Block files: every `.wt` file is an array of fixed-size blocks. Block 0 describes the file; every other block
 * carries a header naming its file, its own number and the checkpoint generation that wrote it, plus a CRC32 over the
 * whole block. A checkpoint reference names (block, generation, checksum), so a block overwritten after the reference
 * was taken — by a later checkpoint reusing it — is detected from the bytes alone.
 */

/** Default block size. */
export const DEFAULT_BLOCK_SIZE = 4096;
/** Bytes of header at the start of every data block. */
export const BLOCK_HEADER = 32;

const DATA_MAGIC = 0x53494d42; // "SIMB"
const DESC_MAGIC = 0x53494d44; // "SIMD"
const FORMAT_VERSION = 1;

/** Where a page's bytes live: block number, the generation that wrote it, and its checksum. */
export interface BlockRef {
  readonly block: number;
  readonly gen: number;
  readonly crc: number;
}

/** CRC32 of a block with its checksum field (bytes 28..32 of data blocks, 16..20 of the descriptor) treated as absent. */
function blockCrc(buf: Buffer, crcOffset: number): number {
  return crc32(buf.subarray(crcOffset + 4), crc32(buf.subarray(0, crcOffset)));
}

function corrupt(file: string, block: number, detail: string): StorageError {
  return new StorageError(StorageCodes.DataCorruptionDetected, `${file} block ${block}: ${detail}`);
}

/**
 * WiredTiger keeps a bounded cache of file handles (`file_manager`); so does the simulator, or a dbpath with tens of
 * thousands of collections would exhaust the process's descriptors. Least recently used handles are closed beyond
 * this many and reopened on demand; closing loses nothing (writes are in the page cache, fsync works per inode).
 */
const MAX_OPEN_HANDLES = 256;
const openHandles = new Map<BlockFile, true>();

function touch(file: BlockFile): void {
  openHandles.delete(file);
  openHandles.set(file, true);
  while (openHandles.size > MAX_OPEN_HANDLES) {
    const [oldest] = openHandles.keys();
    openHandles.delete(oldest!);
    oldest!.releaseHandle();
  }
}

/**
 * One open block file. Allocation hands out the lowest free block first and grows the file only when none is free;
 * files never shrink. Which blocks are free is decided by the checkpoint layer ({@link setFree}, {@link release}).
 */
export class BlockFile {
  private fd: number;
  private closed = false;
  private readonly filePath: string;
  private blocks: number;
  private free: number[] = [];

  private constructor(
    /** File name relative to the dbpath, used in every error message. */
    readonly name: string,
    readonly fileId: number,
    readonly blockSize: number,
    fd: number,
    blocks: number,
    /** When false, {@link sync} does nothing (survives a killed process, not a power loss). */
    private readonly fsync: boolean,
    dbpath: string,
  ) {
    this.fd = fd;
    this.blocks = blocks;
    this.filePath = path.join(dbpath, name);
    touch(this);
  }

  /** The descriptor, reopened if the handle cache closed it. */
  private handle(): number {
    if (this.closed) throw new Error(`sim bug: ${this.name} used after close`);
    if (this.fd < 0) this.fd = fs.openSync(this.filePath, 'r+');
    touch(this);
    return this.fd;
  }

  /** @internal Closes the descriptor for the handle cache; the file stays usable. */
  releaseHandle(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Creates (or truncates) a file holding only its descriptor block, and fsyncs it. */
  static create(dbpath: string, name: string, fileId: number, blockSize: number, fsync = true): BlockFile {
    // An ident under directoryPerDB / directoryForIndexes lives in a subdirectory, made with its first file.
    if (path.dirname(name) !== '.') fs.mkdirSync(path.join(dbpath, path.dirname(name)), { recursive: true });
    const fd = fs.openSync(path.join(dbpath, name), 'w+');
    const desc = Buffer.alloc(blockSize);
    desc.writeUInt32LE(DESC_MAGIC, 0);
    desc.writeUInt32LE(fileId, 4);
    desc.writeUInt32LE(blockSize, 8);
    desc.writeUInt32LE(FORMAT_VERSION, 12);
    desc.writeUInt32LE(blockCrc(desc, 16), 16);
    fs.writeSync(fd, desc, 0, blockSize, 0);
    if (fsync) fs.fsyncSync(fd);
    return new BlockFile(name, fileId, blockSize, fd, 1, fsync, dbpath);
  }

  /** Opens an existing file and checks its descriptor against the file id and block size the metadata expects. */
  static open(
    dbpath: string,
    name: string,
    fileId: number,
    blockSize: number,
    generation: number,
    fsync = true,
  ): BlockFile {
    let fd: number;
    try {
      fd = fs.openSync(path.join(dbpath, name), 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StorageError(
          StorageCodes.NonExistentPath,
          `${name}: file is missing (referenced by checkpoint generation ${generation})`,
        );
      }
      throw err;
    }
    try {
      const size = fs.fstatSync(fd).size;
      const desc = Buffer.alloc(blockSize);
      const got = fs.readSync(fd, desc, 0, blockSize, 0);
      if (got < blockSize) throw corrupt(name, 0, `descriptor block truncated (file is ${size} bytes)`);
      if (desc.readUInt32LE(0) !== DESC_MAGIC || desc.readUInt32LE(16) !== blockCrc(desc, 16)) {
        throw corrupt(name, 0, 'descriptor checksum mismatch');
      }
      if (desc.readUInt32LE(4) !== fileId) {
        throw corrupt(name, 0, `descriptor names file id ${desc.readUInt32LE(4)}, metadata expects ${fileId}`);
      }
      if (desc.readUInt32LE(8) !== blockSize) {
        throw corrupt(name, 0, `descriptor block size ${desc.readUInt32LE(8)}, metadata expects ${blockSize}`);
      }
      return new BlockFile(name, fileId, blockSize, fd, Math.floor(size / blockSize), fsync, dbpath);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Payload bytes one block can hold. */
  get capacity(): number {
    return this.blockSize - BLOCK_HEADER;
  }

  /** Number of blocks the file spans (descriptor included). */
  get blockCount(): number {
    return this.blocks;
  }

  /** Declares every block in `[1, blockCount)` not in `used` free (after loading a checkpoint). */
  setFree(used: ReadonlySet<number>): void {
    this.free = [];
    for (let b = 1; b < this.blocks; b++) if (!used.has(b)) this.free.push(b);
  }

  /**
   * Byte offsets of the blocks no checkpoint up to `generation` can have written: free blocks whose header names a
   * later generation or is not a data block's (torn), and a partial block at the end of the file. These are what a
   * checkpoint that never completed left behind; reading just the free blocks' headers finds them.
   */
  strayWritesAfter(generation: number): number[] {
    const out: number[] = [];
    const buf = Buffer.alloc(BLOCK_HEADER);
    for (const b of this.free) {
      const got = fs.readSync(this.handle(), buf, 0, BLOCK_HEADER, b * this.blockSize);
      if (got < BLOCK_HEADER || buf.readUInt32LE(0) !== DATA_MAGIC || Number(buf.readBigUInt64LE(12)) > generation) out.push(b * this.blockSize);
    }
    if (fs.fstatSync(this.handle()).size > this.blocks * this.blockSize) out.push(this.blocks * this.blockSize);
    return out;
  }

  /** Returns blocks to the free list; they will be overwritten by later writes, lowest first. */
  release(blocks: Iterable<number>): void {
    for (const b of blocks) {
      let lo = 0;
      let hi = this.free.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((this.free[mid] as number) < b) lo = mid + 1;
        else hi = mid;
      }
      if (this.free[lo] !== b) this.free.splice(lo, 0, b);
    }
  }

  private allocate(): number {
    const b = this.free.shift();
    if (b !== undefined) return b;
    return this.blocks++;
  }

  /** Writes `payload` into freshly allocated blocks (chained by their `next` field) stamped with `gen`. */
  writeChain(payload: Uint8Array, gen: number): BlockRef[] {
    const count = Math.max(1, Math.ceil(payload.length / this.capacity));
    const numbers = Array.from({ length: count }, () => this.allocate());
    const refs: BlockRef[] = [];
    for (let i = 0; i < count; i++) {
      const block = numbers[i] as number;
      const part = payload.subarray(i * this.capacity, (i + 1) * this.capacity);
      const buf = Buffer.alloc(this.blockSize);
      buf.writeUInt32LE(DATA_MAGIC, 0);
      buf.writeUInt32LE(this.fileId, 4);
      buf.writeUInt32LE(block, 8);
      buf.writeBigUInt64LE(BigInt(gen), 12);
      buf.writeUInt32LE(part.length, 20);
      buf.writeUInt32LE(numbers[i + 1] ?? 0, 24);
      buf.set(part, BLOCK_HEADER);
      const crc = blockCrc(buf, 28);
      buf.writeUInt32LE(crc, 28);
      fs.writeSync(this.handle(), buf, 0, this.blockSize, block * this.blockSize);
      refs.push({ block, gen, crc });
    }
    return refs;
  }

  /**
   * Reads a chain and verifies every block against its reference: in the file, checksum intact, right file id and
   * block number, written by the expected generation, identical to what that generation wrote, linked as listed.
   */
  readChain(refs: readonly BlockRef[]): Buffer {
    const parts: Buffer[] = [];
    refs.forEach((ref, i) => {
      const buf = Buffer.alloc(this.blockSize);
      const got = fs.readSync(this.handle(), buf, 0, this.blockSize, ref.block * this.blockSize);
      if (got === this.blockSize && buf.readUInt32LE(0) === DATA_MAGIC && buf.readUInt32LE(28) !== blockCrc(buf, 28)) {
        throw corrupt(this.name, ref.block, `checksum mismatch (expected generation ${ref.gen})`);
      }
      const len = this.checkHeader(buf, got, ref, refs[i + 1]?.block ?? 0);
      parts.push(buf.subarray(BLOCK_HEADER, BLOCK_HEADER + len));
    });
    return Buffer.concat(parts);
  }

  /**
   * Checks the headers of a chain's blocks without reading their payloads: file id, block number, generation, the
   * checksum the header carries against the one the reference recorded, and the links. Catches a block reused or left
   * stale by another checkpoint (what a copy taken at the wrong time holds); a damaged payload is found by
   * {@link readChain}, when the page is first read, as WiredTiger checks a page's checksum when it reads the page.
   */
  checkChainHeaders(refs: readonly BlockRef[]): void {
    const buf = Buffer.alloc(BLOCK_HEADER);
    refs.forEach((ref, i) => {
      const got = fs.readSync(this.handle(), buf, 0, BLOCK_HEADER, ref.block * this.blockSize);
      // A block the file does not hold whole is beyond its end, as for a short block read.
      this.checkHeader(buf, got === BLOCK_HEADER && ref.block < this.blocks ? this.blockSize : 0, ref, refs[i + 1]?.block ?? 0);
    });
  }

  /** The checks of one block's header (`got`: bytes of the block the file holds); returns its payload length. */
  private checkHeader(buf: Buffer, got: number, ref: BlockRef, next: number): number {
    const where = `expected generation ${ref.gen}`;
    if (got < this.blockSize) {
      throw corrupt(this.name, ref.block, `beyond the end of the file (${this.blocks} blocks); ${where}`);
    }
    if (buf.readUInt32LE(0) !== DATA_MAGIC) throw corrupt(this.name, ref.block, `checksum mismatch (${where})`);
    const found = Number(buf.readBigUInt64LE(12));
    if (buf.readUInt32LE(4) !== this.fileId) {
      throw corrupt(this.name, ref.block, `belongs to file id ${buf.readUInt32LE(4)}, not ${this.fileId} (${where})`);
    }
    if (buf.readUInt32LE(8) !== ref.block) {
      throw corrupt(this.name, ref.block, `header names block ${buf.readUInt32LE(8)} (${where})`);
    }
    if (found !== ref.gen) {
      const why = found > ref.gen ? 'block reused by a later checkpoint' : 'stale block from an earlier checkpoint';
      throw corrupt(this.name, ref.block, `${where}, found generation ${found} (${why})`);
    }
    if (buf.readUInt32LE(28) !== ref.crc) {
      throw corrupt(this.name, ref.block, `checksum mismatch: not the block generation ${ref.gen} wrote`);
    }
    if (buf.readUInt32LE(24) !== next) {
      throw corrupt(this.name, ref.block, `links to block ${buf.readUInt32LE(24)}, expected ${next} (${where})`);
    }
    const len = buf.readUInt32LE(20);
    if (len > this.capacity) throw corrupt(this.name, ref.block, `payload length ${len} too large (${where})`);
    return len;
  }

  /** Flushes writes to disk. */
  sync(): void {
    if (this.fsync) fs.fsyncSync(this.handle());
  }

  /** Closes the descriptor; the object is unusable afterwards. */
  close(): void {
    this.releaseHandle();
    this.closed = true;
    openHandles.delete(this);
  }
}
