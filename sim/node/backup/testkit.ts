/**
 * Helpers for the backup tests: the commands a backup client sends, sent raw through the official driver (its
 * aggregate cursor busy-loops on a tailable cursor: docs/psmdb-behaviour.md section 8), and a naive copier. Not part
 * of the simulator.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Document, MongoClient, Timestamp } from 'mongodb';
import { Long } from 'mongodb';
import { expect } from 'vitest';
import type { SimNode } from '../types.ts';
import { MongodNode } from '../node.ts';
import { simLogger } from '../../log.ts';
import { freePort } from '../../../lib/ports.ts';
import { direct, eventually } from '../../testkit.ts';
import { relativeTo } from './paths.ts';

/** Replies with BSON types kept (Int32, Double, Long as wrappers), to check what went over the wire. */
export const TYPED = { promoteValues: false, promoteLongs: false } as const;

export function run(c: MongoClient, command: Document, options: Document = {}, db = 'admin'): Promise<Document> {
  return c.db(db).command(command, options);
}

/** Expects `p` to fail with `code` and, when given, exactly `message` (a string) or a message matching it. */
export async function expectError(p: Promise<unknown>, code: number, message?: string | RegExp): Promise<void> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: number; message?: string } | undefined;
  expect(err, 'the command should have failed').toBeDefined();
  expect(err!.code).toBe(code);
  if (typeof message === 'string') expect(err!.message).toBe(message);
  else if (message) expect(err!.message).toMatch(message);
}

/** `{aggregate: 1, pipeline: [{$backupCursor: spec}], cursor: {...}}`. */
export function backupCursorCommand(spec: unknown = {}, cursor: Document = {}): Document {
  return { aggregate: 1, pipeline: [{ $backupCursor: spec }], cursor };
}

export function extendCommand(backupId: unknown, timestamp: unknown, extra: Document = {}): Document {
  return { aggregate: 1, pipeline: [{ $backupCursorExtend: { backupId, timestamp } }], cursor: {}, ...extra };
}

export interface OpenedBackup {
  id: Long;
  metadata: Document;
  /** The file documents, in stream order. */
  files: Document[];
}

/** Opens a backup cursor and drains its list (getMore until an empty batch); the cursor stays open. */
export async function openBackup(c: MongoClient, spec: unknown = {}, options: Document = {}): Promise<OpenedBackup> {
  const reply = await run(c, backupCursorCommand(spec), options);
  const cursor = reply.cursor as Document;
  const docs = [...(cursor.firstBatch as Document[])];
  const id = cursor.id as Long;
  for (;;) {
    const more = (await getMore(c, id, options)).cursor as Document;
    if ((more.nextBatch as Document[]).length === 0) break;
    docs.push(...(more.nextBatch as Document[]));
  }
  return { id, metadata: docs[0]!.metadata as Document, files: docs.slice(1) };
}

const asLong = (id: Long | number): Long => (typeof id === 'number' ? Long.fromNumber(id) : id);

export function getMore(c: MongoClient, id: Long, options: Document = {}, extra: Document = {}): Promise<Document> {
  // The driver hands back an id below 2^53 as a JS number (promoteLongs); getMore wants a long, as mongod does.
  return run(c, { getMore: asLong(id), collection: '$cmd.aggregate', ...extra }, options);
}

export function killCursor(c: MongoClient, id: Long): Promise<Document> {
  return run(c, { killCursors: '$cmd.aggregate', cursors: [asLong(id)] });
}

/** `$backupCursorExtend`: the file names it returns. */
export async function extend(c: MongoClient, backupId: unknown, ts: Timestamp, extra: Document = {}): Promise<string[]> {
  const reply = await run(c, extendCommand(backupId, ts, extra));
  const cursor = reply.cursor as Document;
  if (!Long.fromValue(cursor.id as Long).isZero()) throw new Error('extend left a cursor open');
  return (cursor.firstBatch as Document[]).map((d) => d.filename as string);
}

/** Waits until the node has a stable checkpoint (`checkpointTimestamp` is then reported). */
export async function stableCheckpoint(node: SimNode): Promise<Timestamp> {
  return (await eventually(() => node.engine.lastCheckpoint().timestamp, 10_000, `a stable checkpoint on ${node.address}`))!;
}

/** Waits for `n` more checkpoints of a node. */
export async function checkpoints(node: SimNode, n: number): Promise<void> {
  const from = node.engine.lastCheckpoint().generation;
  await eventually(() => node.engine.lastCheckpoint().generation >= from + n, 20_000, `${n} checkpoints on ${node.address}`);
}

/**
 * A naive copier: copies the file a backup cursor named into `dest` (same relative path), optionally only its first
 * `limit` bytes (a data file "up to its listed fileSize").
 */
export function copyInto(dbpath: string, filename: string, dest: string, limit?: number): void {
  const rel = relativeTo(dbpath, filename);
  const data = fs.readFileSync(filename);
  fs.mkdirSync(path.dirname(path.join(dest, rel)), { recursive: true });
  fs.writeFileSync(path.join(dest, rel), limit === undefined ? data : data.subarray(0, limit));
}

export function isLogFile(filename: string): boolean {
  return /\/journal\/WiredTigerLog\.\d{10}$/.test(filename);
}

/**
 * A standalone node on `dbpath` without timed checkpoints (the test takes them), and a direct client: what the
 * incremental tests use to decide exactly which checkpoints exist when a node crashes or a cursor lists ranges.
 */
export interface QuietNode {
  node: MongodNode;
  client: MongoClient;
  /** Stops the client; with `crash`, kills the node (kill -9: no checkpoint), otherwise shuts it down cleanly. */
  halt(crash?: boolean): Promise<void>;
}

export async function startQuietNode(dbpath: string, port?: number): Promise<QuietNode> {
  const node = new MongodNode({
    port: port ?? (await freePort()),
    dbpath,
    log: simLogger(),
    setParameters: { simFsync: false, simLogFileSize: 64 * 1024, simCheckpointIntervalMs: 0 },
  });
  await node.start();
  const client = direct(node.address);
  return {
    node,
    client,
    halt: async (crash = false) => {
      await client.close();
      if (crash) await node.crash();
      else await node.stop();
    },
  };
}
