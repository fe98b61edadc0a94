import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Long, Timestamp } from 'mongodb';
import { afterEach } from 'vitest';
import type { Document } from 'mongodb';
import { StorageEngine } from './engine.ts';
import type { StorageEngineOptions } from './api.ts';
import type { OplogEntry } from './oplog.ts';
import type { CheckpointPin } from './pin.ts';
import type { StartMode } from './replication.ts';

/**
 * Helpers shared by this directory's tests: temporary dbpaths, small geometry so files stay tiny, oplog entry
 * builders, and a backup copier that follows a pin's file list the way cutpoint's agent does.
 */

/**
 * Small blocks and log files so a handful of documents spans many blocks and files. No fsync: the tests simulate
 * killed processes, never power loss, and fsync dominates their run time.
 */
export const SMALL = { blockSize: 512, logFileSize: 16 * 1024, pageTarget: 512, fsync: false } as const;

/** A fresh directory under the OS temp dir; remove it with {@link cleanup}. */
export function tmpDir(prefix = 'cutpoint-storage-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Removes directories made by {@link tmpDir}. */
export function cleanup(dirs: string[]): void {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** For a test file: a maker of fresh dbpaths, all removed after each test. */
export function useTmpDirs(): () => string {
  const dirs: string[] = [];
  afterEach(() => cleanup(dirs));
  return () => {
    const dir = tmpDir();
    dirs.push(dir);
    return dir;
  };
}

/** Opens an engine with the small geometry. */
export function openEngine(
  dbpath: string,
  mode: StartMode = 'replicaSet',
  extra: Partial<StorageEngineOptions> = {},
): StorageEngine {
  return StorageEngine.open({ dbpath, mode, ...SMALL, ...extra });
}

/** `Timestamp(100, i)`: one cluster-time second, increments as sequence numbers. */
export function ts(i: number): Timestamp {
  return new Timestamp({ t: 100, i });
}

/** Builds a top-level oplog entry. */
export function entry(i: number, op: OplogEntry['op'], ns: string, o: Document, o2?: Document): OplogEntry {
  const e: OplogEntry = { ts: ts(i), t: Long.fromNumber(1), op, ns, o, wall: new Date(1_700_000_000_000 + i) };
  if (o2) e.o2 = o2;
  return e;
}

/** A primary's write: journal + oplog + data, at `Timestamp(100, i)`. */
export function write(engine: StorageEngine, i: number, op: 'i' | 'u' | 'd', ns: string, doc: Document): void {
  const o = op === 'd' ? { _id: doc._id } : doc;
  engine.logAndApply(entry(i, op, ns, o, op === 'u' ? { _id: doc._id } : undefined));
}

/** Creates `db.coll` through the oplog at `Timestamp(100, i)`. */
export function create(engine: StorageEngine, i: number, ns: string): void {
  const dot = ns.indexOf('.');
  engine.logAndApply(entry(i, 'c', `${ns.slice(0, dot)}.$cmd`, { create: ns.slice(dot + 1) }));
}

/** Copies what a pin lists into `dest`: data files up to their listed size, the rest whole. */
export function copyListed(src: string, dest: string, pin: CheckpointPin, kinds = ['log', 'data', 'backup', 'version']): void {
  for (const file of pin.files) {
    if (!kinds.includes(file.kind)) continue;
    copyFile(src, dest, file.path, file.kind === 'data' ? file.size : undefined);
  }
}

/** Copies one file (relative path), optionally only its first `limit` bytes. */
export function copyFile(src: string, dest: string, rel: string, limit?: number): void {
  const data = fs.readFileSync(path.join(src, rel));
  fs.mkdirSync(path.dirname(path.join(dest, rel)), { recursive: true });
  fs.writeFileSync(path.join(dest, rel), limit === undefined ? data : data.subarray(0, limit));
}

/** `{_id: value}` of every document, for compact assertions. */
export function balances(engine: StorageEngine, ns: string, at?: Timestamp): Record<string, unknown> {
  return Object.fromEntries(engine.scan(ns, at).map((d) => [String(d._id), d.v]));
}
