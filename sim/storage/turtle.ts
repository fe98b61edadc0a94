import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { BSON } from 'mongodb';
import type { Document } from 'mongodb';
import { StorageCodes, StorageError } from './errors.ts';
import { Files, writeAtomic } from './dbfiles.ts';
import { checkpointDoc, metadataKey, parseCheckpointDoc, parseTableDoc, tableDoc } from './metadata.ts';
import type { CheckpointMeta, TableMeta } from './metadata.ts';

/**
 * `WiredTiger.turtle` (where the newest checkpoint's metadata lives in `WiredTiger.wt`) and `WiredTiger.backup` (a
 * pinned checkpoint's metadata in text, from which a restored dbpath rebuilds both). Both use WiredTiger's layout of
 * alternating key and value lines, and end with a checksum line so a torn or truncated copy is refused.
 */

/** Where the metadata of the newest durable checkpoint is. */
export interface TurtleInfo {
  readonly generation: number;
  readonly blockSize: number;
  /** Blocks of `WiredTiger.wt` holding the metadata payload, in chain order, with generation and checksum. */
  readonly blocks: ReadonlyArray<{ block: number; gen: number; crc: number }>;
  readonly length: number;
  readonly crc: number;
}

function withChecksum(pairs: Array<[string, string]>): string {
  const body = pairs.map(([k, v]) => `${k}\n${v}\n`).join('');
  return `${body}checksum\n${crc32(body).toString(16)}\n`;
}

function parsePairs(text: string, file: string): Map<string, string> {
  const lines = text.split('\n');
  const pairs = new Map<string, string>();
  let body = '';
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const key = lines[i] as string;
    const value = lines[i + 1] as string;
    if (key === 'checksum') {
      if (crc32(body).toString(16) !== value) break;
      return pairs;
    }
    pairs.set(key, value);
    body += `${key}\n${value}\n`;
  }
  throw new StorageError(StorageCodes.DataCorruptionDetected, `${file}: checksum mismatch or truncated file`);
}

/** Atomically replaces the turtle: `WiredTiger.turtle.set`, fsync, rename, fsync of the dbpath. */
export function writeTurtle(dbpath: string, info: TurtleInfo, fsync = true): void {
  const text = withChecksum([
    ['WiredTiger version string', 'WiredTiger 11.2.0 (sim)'],
    ['WiredTiger version', 'major=11,minor=2,patch=0'],
    [
      metadataKey(Files.metadata),
      `generation=${info.generation},block_size=${info.blockSize},length=${info.length},checksum=${info.crc},` +
        `blocks=[${info.blocks.map((b) => `${b.block}:${b.gen}:${b.crc}`).join(';')}]`,
    ],
  ]);
  writeAtomic(dbpath, Files.turtle, text, Files.turtleSet, fsync);
}

/** Reads the turtle, or returns undefined when there is none. */
export function readTurtle(dbpath: string): TurtleInfo | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dbpath, Files.turtle), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const value = parsePairs(text, Files.turtle).get(metadataKey(Files.metadata));
  const m = value?.match(/^generation=(\d+),block_size=(\d+),length=(\d+),checksum=(\d+),blocks=\[([\d:;]*)\]$/);
  if (!m) throw new StorageError(StorageCodes.DataCorruptionDetected, `${Files.turtle}: no metadata entry`);
  const blocks = (m[5] as string)
    .split(';')
    .filter((s) => s !== '')
    .map((s) => {
      const [block, gen, crc] = s.split(':').map(Number) as [number, number, number];
      return { block, gen, crc };
    });
  return { generation: Number(m[1]), blockSize: Number(m[2]), length: Number(m[3]), crc: Number(m[4]), blocks };
}

function ejson(doc: Document): string {
  return BSON.EJSON.stringify(doc, { relaxed: false });
}

/** Writes `WiredTiger.backup` for a pinned checkpoint: one `checkpoint` entry, then one entry per table file. */
export function writeBackupFile(dbpath: string, meta: CheckpointMeta, fsync = true): void {
  const pairs: Array<[string, string]> = [['checkpoint', ejson(checkpointDoc(meta))]];
  for (const table of meta.tables) pairs.push([metadataKey(table.file), ejson(tableDoc(table))]);
  writeAtomic(dbpath, Files.backup, withChecksum(pairs), Files.backupTmp, fsync);
}

/** Parses `WiredTiger.backup` back into checkpoint metadata. */
export function readBackupFile(dbpath: string): CheckpointMeta {
  const text = fs.readFileSync(path.join(dbpath, Files.backup), 'utf8');
  const pairs = parsePairs(text, Files.backup);
  const checkpoint = pairs.get('checkpoint');
  if (checkpoint === undefined) {
    throw new StorageError(StorageCodes.DataCorruptionDetected, `${Files.backup}: no checkpoint entry`);
  }
  const tables: TableMeta[] = [];
  for (const [key, value] of pairs) {
    if (key.startsWith('file:')) tables.push(parseTableDoc(BSON.EJSON.parse(value) as Document));
  }
  const doc = BSON.EJSON.parse(checkpoint) as Document;
  return parseCheckpointDoc(doc, tables);
}
