import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { BSON } from 'mongodb';
import type { Document } from 'mongodb';
import { StorageCodes, StorageError } from './errors.ts';
import { Files, syncDir } from './dbfiles.ts';
import type { LogPosition } from './metadata.ts';
import { BSON_READ } from './pages.ts';

/**
 * The journal: WiredTiger-named log files (`journal/WiredTigerLog.NNNNNNNNNN`) preallocated to a fixed size and filled
 * with zeros, holding records `[u32 length][u32 crc32(length bytes + payload)][BSON payload]`. Each file starts with a
 * header record naming its own number. A zero length ends a file's records; a bad record followed only by zeros is a
 * torn write (the end of that file); a bad record followed by anything else is corruption.
 */

/** Default preallocated size of a log file in the sim (PSMDB: 100 MiB). */
export const DEFAULT_LOG_FILE_SIZE = 1 << 20;
const RECORD_HEADER = 8;

/** `WiredTigerLog.0000000042`. */
export function logFileName(n: number): string {
  return `WiredTigerLog.${String(n).padStart(10, '0')}`;
}

/** Path of a log file relative to the dbpath, as backup listings spell it. */
export function logFilePath(n: number): string {
  return `${Files.journalDir}/${logFileName(n)}`;
}

function tmpLogName(n: number): string {
  return `WiredTigerTmplog.${String(n).padStart(10, '0')}`;
}

/** Numbers of the log files present, ascending. */
export function listLogNumbers(dbpath: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(dbpath, Files.journalDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .map((n) => /^WiredTigerLog\.(\d{10})$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

function frame(payload: Uint8Array): Buffer {
  const buf = Buffer.alloc(RECORD_HEADER + payload.length);
  buf.writeUInt32LE(payload.length, 0);
  buf.set(payload, RECORD_HEADER);
  buf.writeUInt32LE(crc32(payload, crc32(buf.subarray(0, 4))), 4);
  return buf;
}

function allZero(buf: Buffer, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function corrupt(n: number, offset: number, detail: string): StorageError {
  return new StorageError(StorageCodes.DataCorruptionDetected, `${logFilePath(n)} offset ${offset}: ${detail}`);
}

/** Records of one log file from `offset`, stopping at a zero length or a torn tail. Returns them and the end. */
function readLogFile(dbpath: string, n: number, offset: number): { records: Document[]; end: number } {
  const buf = fs.readFileSync(path.join(dbpath, logFilePath(n)));
  const records: Document[] = [];
  let off = 0;
  let first = true;
  while (off + RECORD_HEADER <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len === 0) break;
    const end = off + RECORD_HEADER + len;
    if (end > buf.length) {
      if (allZero(buf, off + RECORD_HEADER)) break;
      throw corrupt(n, off, `record length ${len} runs past the end of the file`);
    }
    const payload = buf.subarray(off + RECORD_HEADER, end);
    if (buf.readUInt32LE(off + 4) !== crc32(payload, crc32(buf.subarray(off, off + 4)))) {
      if (allZero(buf, end)) break;
      throw corrupt(n, off, 'checksum mismatch followed by more records');
    }
    let doc: Document;
    try {
      doc = BSON.deserialize(payload, BSON_READ);
    } catch {
      throw corrupt(n, off, 'record is not valid BSON');
    }
    if (first) {
      if (doc.log !== n) throw corrupt(n, off, `header names log file ${String(doc.log)}`);
      first = false;
    } else if (off >= offset) {
      records.push(doc);
    }
    off = end;
  }
  if (first) throw corrupt(n, 0, 'no header record');
  return { records, end: off };
}

/** What journal replay found: the records after the start position, in order, and where the journal ends. */
export interface JournalReplay {
  readonly records: Document[];
  readonly end: LogPosition;
}

/**
 * Reads every record after `from`, following log files in number order. The file at `from` must exist, and so must
 * every file between it and the newest one present: a gap is a missing file, never the end of the log.
 */
export function readJournal(dbpath: string, from: LogPosition, generation: number): JournalReplay {
  const present = listLogNumbers(dbpath);
  if (!present.includes(from.file)) {
    throw new StorageError(
      StorageCodes.NonExistentPath,
      `${logFilePath(from.file)} is missing: recovery from checkpoint generation ${generation} starts in it ` +
        `at offset ${from.offset}`,
    );
  }
  const newest = present[present.length - 1] as number;
  const records: Document[] = [];
  let end: LogPosition = from;
  for (let n = from.file; n <= newest; n++) {
    if (!present.includes(n)) {
      throw new StorageError(
        StorageCodes.NonExistentPath,
        `${logFilePath(n)} is missing: the journal continues in ${logFileName(present.find((p) => p > n) ?? newest)}`,
      );
    }
    const file = readLogFile(dbpath, n, n === from.file ? from.offset : 0);
    records.push(...file.records);
    end = { file: n, offset: file.end };
  }
  return { records, end };
}

/** The journal being written: one current log file, appended to and switched when full or on demand. */
export class Journal {
  private fd = -1;
  private current = 0;
  private offset = 0;

  private constructor(
    private readonly dbpath: string,
    private readonly fileSize: number,
    private readonly fsync: boolean,
  ) {}

  /** Opens the journal directory and starts a new log file after the newest one present (as WiredTiger does). */
  static open(dbpath: string, fileSize: number, fsync = true): Journal {
    const dir = path.join(dbpath, Files.journalDir);
    fs.mkdirSync(dir, { recursive: true });
    for (const name of fs.readdirSync(dir)) if (name.startsWith('WiredTigerTmplog.')) fs.unlinkSync(path.join(dir, name));
    const journal = new Journal(dbpath, fileSize, fsync);
    journal.startFile((listLogNumbers(dbpath).pop() ?? 0) + 1);
    return journal;
  }

  /** Number of the log file being written. */
  get currentFile(): number {
    return this.current;
  }

  /** Position of the next record. */
  position(): LogPosition {
    return { file: this.current, offset: this.offset };
  }

  /** Appends one record, switching to a new file first when it does not fit in the current one. */
  append(doc: Document): void {
    const rec = frame(BSON.serialize(doc));
    if (this.offset + rec.length > this.fileSize) {
      if (rec.length + this.headerSize() > this.fileSize) {
        throw new StorageError(StorageCodes.BadValue, `journal record of ${rec.length} bytes exceeds the log file size`);
      }
      this.switchLog();
    }
    fs.writeSync(this.fd, rec, 0, rec.length, this.offset);
    this.offset += rec.length;
  }

  /** Starts a new log file, whatever the current one holds; returns its number. */
  switchLog(): number {
    this.startFile(this.current + 1);
    return this.current;
  }

  /** Removes log files numbered below `n` (never the current one); returns the numbers removed. */
  removeBefore(n: number): number[] {
    const removed = listLogNumbers(this.dbpath).filter((f) => f < n && f < this.current);
    for (const f of removed) fs.unlinkSync(path.join(this.dbpath, logFilePath(f)));
    return removed;
  }

  /** Flushes the current log file. */
  sync(): void {
    if (this.fd >= 0 && this.fsync) fs.fsyncSync(this.fd);
  }

  /** Flushes and closes. */
  close(): void {
    if (this.fd < 0) return;
    this.sync();
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Closes without flushing (a simulated crash; the OS still has every write). */
  abandon(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private headerSize(): number {
    return frame(BSON.serialize({ log: this.current, version: 1 })).length;
  }

  /** Preallocates under a temporary name, writes the header, fsyncs, then renames into place. */
  private startFile(n: number): void {
    const dir = path.join(this.dbpath, Files.journalDir);
    const header = frame(BSON.serialize({ log: n, version: 1 }));
    const tmp = path.join(dir, tmpLogName(n));
    const fd = fs.openSync(tmp, 'w+');
    fs.ftruncateSync(fd, this.fileSize);
    fs.writeSync(fd, header, 0, header.length, 0);
    if (this.fsync) fs.fsyncSync(fd);
    fs.renameSync(tmp, path.join(dir, logFileName(n)));
    syncDir(dir, this.fsync);
    if (this.fd >= 0) {
      this.sync();
      fs.closeSync(this.fd);
    }
    this.fd = fd;
    this.current = n;
    this.offset = header.length;
  }
}
