/**
 * What a restore has done to one target member, kept beside its data (`<dbpath>/.cutpoint-restore/state.json`) so
 * that every step is idempotent across agent restarts: a step whose effect is recorded is skipped, a mongod the step
 * started is found again by its recorded pid and port. The file is the agent's only memory; the workflow's history
 * holds the rest. Written atomically (temporary name, fsync, rename).
 *
 * The data kept aside by `--overwrite` lives beside the dbpath under a name derived from the restore id, so its
 * existence alone says the rename happened, even if the agent died before it could record it.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Ts } from '../../../common/timestamp.ts';
import type { MongodHandle } from './node-controller.ts';

/** The hidden directory a restore keeps its state and mongod logs in, inside the target dbpath. */
export const STATE_DIR = '.cutpoint-restore';

/** What has been done to one target member. */
export interface MemberState {
  restoreId: string;
  /** Files placed and checked against the manifest. */
  placed?: { files: number; bytes: number };
  /** Local replication collections reset, oplogTruncateAfterPoint set. */
  prepared?: boolean;
  /** Oplog applied up to the truncate point; the newest entry left. */
  recovered?: { oplogTop: Ts | null };
  /**
   * A point-in-time restore's replay (replay-oplog.ts): the newest entry applied (its checkpoint), entries and bytes
   * applied, late commits applied; `done` once the replay reached its target.
   */
  replay?: { through: Ts | null; entries: number; bytes: number; late: number; done?: boolean };
  /** Replica-set (and shard) metadata rewritten for the new hosts. */
  reset?: boolean;
  /** A temporary mongod of a step in progress. */
  temp?: MongodHandle;
  /** The final mongod (the restored member), left running. */
  started?: MongodHandle;
}

/** `<dbpath>/.cutpoint-restore`. */
export function stateDir(dbpath: string): string {
  return join(dbpath, STATE_DIR);
}

/** Where the data found in a dbpath is kept aside by restore `restoreId` (`--overwrite`). */
export function asidePath(dbpath: string, restoreId: string): string {
  return `${dbpath.replace(/\/+$/, '')}.cutpoint-aside-${restoreId}`;
}

/** The state of `dbpath`, or undefined when no restore has written one. */
export function readState(dbpath: string): MemberState | undefined {
  const file = join(stateDir(dbpath), 'state.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as MemberState;
}

/** Replaces the state of `dbpath` atomically. */
export function writeState(dbpath: string, state: MemberState): void {
  const dir = stateDir(dbpath);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `state.json.tmp-${process.pid}`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, JSON.stringify(state, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, 'state.json'));
}

/** Reads, changes and writes the state in one call. */
export function updateState(dbpath: string, change: (s: MemberState) => void): MemberState {
  const s = readState(dbpath);
  if (!s) throw new Error(`no restore state in ${dbpath}`);
  change(s);
  writeState(dbpath, s);
  return s;
}
