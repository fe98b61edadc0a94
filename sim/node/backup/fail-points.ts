/**
 * Fail points for the backup state machine: their names, modes and what each does. The command that sets them is
 * configure-fail-point.ts. Names prefixed `sim` exist only in the simulator.
 */
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';

/** The fail points this node knows, with what each does. */
export const FAIL_POINTS = {
  /** PSMDB's own: `$backupCursor` fails with 50919 right after the WiredTiger backup cursor opened. */
  backupCursorErrorAfterOpen: '50919 after the backup cursor opened',
  /** A checkpoint raced the open: 50915, after the `thisBackupName` was registered (so the name is consumed). */
  simBackupCursorCheckpointRace: '50915 BackupCursorOpenConflictWithCheckpoint',
  /** The oplog rolled over while the cursor opened: 50917 (oplogStart found after oplogEnd). */
  simBackupCursorOplogRollover: '50917 oplog rolled over',
  /** The oplog has no first entry after the open: 50912. */
  simBackupCursorNoOplog: '50912 no oplog records',
  /** `createBackup` stays in the hot-backup state, before copying, while this is on (mongod's pauseWhileSet style). */
  simHangDuringCreateBackup: 'createBackup hangs while set',
  /**
   * While set, a command named in `data.commands` waits before it runs (after the auth and session checks); for
   * `aggregate`, only when its first stage is in `data.stages` if that is given (e.g. `['$backupCursorExtend']`).
   * Holds one phase of a client's work in place, as mongod's `failCommand` with `blockConnection` does, but until
   * the point is turned off rather than for a fixed time. Turning it off releases every waiting command.
   */
  simHangBeforeCommand: 'commands named in data.commands (aggregate: first stage in data.stages) wait while set',
  /**
   * Behave as early PSMDB builds: an extend whose wait for the committed snapshot fails (maxTimeMS) is a fatal
   * assertion (29096) and aborts mongod, instead of failing the command (docs/psmdb-behaviour.md section 4).
   */
  simExtendWaitFailureFatal: 'a failed $backupCursorExtend wait aborts the node (fatal 29096, early PSMDB builds)',
  /**
   * mongod's own: a command named in `data.failCommands` fails with `data.errorCode` (and mongod's errmsg) instead of
   * running; with `data.namespace`, only when it targets that collection. Each failure consumes one of `times`.
   */
  failCommand: 'commands in data.failCommands fail with data.errorCode (data.namespace: only on that collection)',
} as const;

export type FailPointName = keyof typeof FAIL_POINTS;

type Mode = { kind: 'off' } | { kind: 'alwaysOn' } | { kind: 'times'; n: number } | { kind: 'skip'; n: number };

interface FailPointState {
  mode: Mode;
  /** How many times the point fired (mongod's `timesEntered`). */
  entered: number;
  data: Document;
}

export function isFailPoint(name: string): name is FailPointName {
  return Object.hasOwn(FAIL_POINTS, name);
}

function count(value: unknown, what: string): number {
  const n = Long.isLong(value) ? value.toNumber() : Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CommandError(ErrorCodes.BadValue, `'${what}' must be a non-negative integer`);
  return n;
}

function parseMode(raw: unknown): Mode {
  if (raw === 'off') return { kind: 'off' };
  if (raw === 'alwaysOn') return { kind: 'alwaysOn' };
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const m = raw as Document;
    if ('times' in m) return { kind: 'times', n: count(m.times, 'times') };
    if ('skip' in m) return { kind: 'skip', n: count(m.skip, 'skip') };
  }
  throw new CommandError(ErrorCodes.BadValue, "'mode' must be one of 'off', 'alwaysOn', 'times', 'skip'");
}

/** The fail points of one node. */
export class FailPoints {
  private readonly points = new Map<FailPointName, FailPointState>();

  /** Sets a point's mode; returns how many times it fired before. */
  configure(name: FailPointName, mode: unknown, data: Document = {}): number {
    const prev = this.points.get(name)?.entered ?? 0;
    this.points.set(name, { mode: parseMode(mode), entered: 0, data });
    return prev;
  }

  /** True if the point fires now; consumes one of `times`, or one of `skip` without firing. */
  shouldFail(name: FailPointName): boolean {
    const p = this.points.get(name);
    if (!p) return false;
    switch (p.mode.kind) {
      case 'off':
        return false;
      case 'alwaysOn':
        p.entered++;
        return true;
      case 'times':
        if (p.mode.n === 0) return false;
        p.mode.n--;
        if (p.mode.n === 0) p.mode = { kind: 'off' };
        p.entered++;
        return true;
      case 'skip':
        if (p.mode.n > 0) {
          p.mode.n--;
          return false;
        }
        p.entered++;
        return true;
    }
  }

  /** The `data` document the point was last configured with. */
  data(name: FailPointName): Document {
    return this.points.get(name)?.data ?? {};
  }

  /**
   * True when `simHangBeforeCommand` is set and names this command (and, for aggregate, its first stage). Counts
   * an entry the first time a command is held, so `configureFailPoint` can report how many were held.
   */
  holdsCommand(name: string, command: Document): boolean {
    if (!this.isOn('simHangBeforeCommand')) return false;
    const data = this.data('simHangBeforeCommand');
    const commands = Array.isArray(data.commands) ? (data.commands as unknown[]) : [];
    if (!commands.includes(name)) return false;
    if (name === 'aggregate' && Array.isArray(data.stages)) {
      const first = (command.pipeline as Document[] | undefined)?.[0];
      const stage = first && typeof first === 'object' ? Object.keys(first)[0] : undefined;
      if (!stage || !(data.stages as unknown[]).includes(stage)) return false;
    }
    return true;
  }

  /** The error code `failCommand` fails this command with now (consuming one of `times`), or undefined. */
  failsCommand(name: string, db: string, command: Document): number | undefined {
    if (!this.isOn('failCommand')) return undefined;
    const data = this.data('failCommand');
    if (!Array.isArray(data.failCommands) || !(data.failCommands as unknown[]).includes(name)) return undefined;
    if (typeof data.namespace === 'string' && data.namespace !== `${db}.${String(command[name])}`) return undefined;
    if (!this.shouldFail('failCommand')) return undefined;
    return Number(data.errorCode ?? ErrorCodes.InternalError);
  }

  /** Marks one entry of a point (a command held by `simHangBeforeCommand`). */
  enter(name: FailPointName): void {
    const p = this.points.get(name);
    if (p) p.entered++;
  }

  /** True while the point is set (for points that hold an operation, not fail it once). */
  isOn(name: FailPointName): boolean {
    const p = this.points.get(name);
    return p !== undefined && p.mode.kind !== 'off';
  }
}
