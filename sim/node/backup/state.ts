/**
 * One node's backup hooks: PSMDB's `WiredTigerBackupCursorHooks` (docs/psmdb-behaviour.md section 4.1). One mutex and
 * one state, `inactive`, `fsyncLocked`, `backupCursorOpened(backupId)` or `hotBackup`: a single backup slot per
 * node, shared by `$backupCursor`, `fsync {lock: true}` and `createBackup`, with PSMDB's codes and messages.
 *
 * The storage side is the engine's checkpoint pin (sim/storage): opening a backup switches to a new log file and pins
 * the newest checkpoint (its blocks are not reused and no log file is removed until release), closing releases it.
 */
import type { Document } from 'mongodb';
import { Int32, Long, Timestamp, UUID } from 'mongodb';
import { sleep } from '../../../lib/process.ts';
import type { BackupFile, CheckpointPin, OplogEntry } from '../../storage/index.ts';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import { compareTs, ZERO_TS } from '../clock.ts';
import type { CommandContext, NodeBackup, SimNode } from '../types.ts';
import { FailPoints } from './fail-points.ts';
import { IncrementalState, type IncrementalPlan } from './incremental.ts';
import type { HooksState, OpenBackup } from './open-backup.ts';
import type { BackupOptions } from './options.ts';
import { backupAggregate } from './pipeline.ts';

/**
 * The hooks mutex. Only `$backupCursorExtend` holds it across a wait (for the committed snapshot), as PSMDB does, so
 * every other hooks operation queues behind that wait; a cursor closed meanwhile is released when the wait ends.
 */
class HooksMutex {
  private locked = false;
  private readonly waiters: Array<() => void> = [];
  private readonly deferred: Array<() => void> = [];

  async lock(): Promise<() => void> {
    if (this.locked) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.locked = true;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.unlock();
    };
  }

  private unlock(): void {
    for (const fn of this.deferred.splice(0)) fn();
    const next = this.waiters.shift();
    if (next) next();
    else this.locked = false;
  }

  /** Runs `fn` now when free, otherwise as soon as the holder unlocks (before the next waiter gets in). */
  whenFree(fn: () => void): void {
    if (this.locked) this.deferred.push(fn);
    else fn();
  }
}

/** `OpTime::toString()`: `{ ts: Timestamp(s, i), t: n }`. */
function opTimeString(o: { ts: Timestamp; t: Long }): string {
  return `{ ts: Timestamp(${o.ts.high}, ${o.ts.low}), t: ${o.t.toString()} }`;
}

function opTimeOf(e: OplogEntry): { ts: Timestamp; t: Long } {
  const t = e.t as unknown;
  return { ts: e.ts, t: Long.isLong(t) ? t : Long.fromNumber(Number(t ?? -1)) };
}

/** The number of a log file from its relative path (`journal/WiredTigerLog.0000000042` → 42). */
export function logNumber(relative: string): number {
  return Number(relative.slice(relative.lastIndexOf('.') + 1));
}

/**
 * WiredTiger's `__wt_log_get_backup_files`: it forces a switch to a new log file, and "the previous log file will be
 * the last one in the backup". So every log file listed is complete; the new one (and later ones) belong to an extend.
 * Returns the number of the last log file a backup lists: the one before the switch.
 */
function switchLog(engine: SimNode['engine']): number {
  return logNumber(engine.switchLog()) - 1;
}

/** Switches the log and pins the newest checkpoint: the pin, and its files as a WiredTiger backup cursor lists them. */
export function beginBackup(engine: SimNode['engine']): { pin: CheckpointPin; files: BackupFile[] } {
  const last = switchLog(engine);
  const pin = engine.pinCheckpoint();
  return { pin, files: pin.files.filter((f) => f.kind !== 'log' || logNumber(f.path) <= last) };
}

export class BackupHooks implements NodeBackup {
  private stateValue: HooksState = 'inactive';
  private current: OpenBackup | undefined;
  /** The pin held by `fsync {lock: true}` (WiredTiger's `beginBackup`) or by a running `createBackup`. */
  private otherPin: CheckpointPin | undefined;
  private readonly mutex = new HooksMutex();
  readonly failPoints = new FailPoints();
  readonly incremental = new IncrementalState(() => this.node.engine);

  constructor(private readonly node: SimNode) {}

  get state(): HooksState {
    return this.stateValue;
  }

  /** `isBackupCursorOpen()`, which `serverStatus.storageEngine.backupCursorOpen` reports. */
  get isBackupCursorOpen(): boolean {
    return this.stateValue === 'backupCursorOpened';
  }

  /** The open backup, if any. */
  get openBackup(): OpenBackup | undefined {
    return this.current;
  }

  /** The aggregate hook (sim/node/commands/aggregate.ts): a pipeline holding `$backupCursor` or `$backupCursorExtend`. */
  aggregate(ctx: CommandContext): Promise<Document> {
    return backupAggregate(ctx, this);
  }

  // ---- fsync lock ------------------------------------------------------------------------------------------------

  async fsyncLock(): Promise<void> {
    const unlock = await this.mutex.lock();
    try {
      if (this.stateValue === 'fsyncLocked') throw new CommandError(50885, 'The node is already fsyncLocked.');
      if (this.stateValue === 'backupCursorOpened') {
        throw new CommandError(50884, 'The existing backup cursor must be closed before fsyncLock can succeed.');
      }
      if (this.stateValue === 'hotBackup') {
        throw new CommandError(29097, "The running hot backup ('createBackup' command) must be completed before fsyncLock can succeed.");
      }
      // WiredTiger's beginBackup: a full backup cursor, so the checkpoint and the log files stay as they are.
      this.otherPin = beginBackup(this.node.engine).pin;
      this.stateValue = 'fsyncLocked';
    } finally {
      unlock();
    }
  }

  async fsyncUnlock(): Promise<void> {
    const unlock = await this.mutex.lock();
    try {
      if (this.stateValue !== 'fsyncLocked') throw new CommandError(50888, 'The node is not fsyncLocked.');
      this.otherPin?.release();
      this.otherPin = undefined;
      this.stateValue = 'inactive';
    } finally {
      unlock();
    }
  }

  // ---- hot backup (createBackup) -------------------------------------------------------------------------------

  /** `WiredTigerHotBackupGuard`: enters the hot-backup state and pins the checkpoint to copy. */
  async enterHotBackup(): Promise<BackupFile[]> {
    const unlock = await this.mutex.lock();
    try {
      if (this.stateValue === 'fsyncLocked') {
        throw new CommandError(29101, 'The node is fsyncLocked. fsyncUnlock must be called before hot backup can be started.');
      }
      if (this.stateValue === 'backupCursorOpened') {
        throw new CommandError(29102, 'The existing backup cursor must be closed before hot backup can be started.');
      }
      if (this.stateValue === 'hotBackup') {
        throw new CommandError(29103, "The running hot backup ('createBackup' command) must be completed before another hot backup can be started.");
      }
      const { pin, files } = beginBackup(this.node.engine);
      this.otherPin = pin;
      this.stateValue = 'hotBackup';
      return files;
    } finally {
      unlock();
    }
  }

  exitHotBackup(): void {
    this.mutex.whenFree(() => {
      if (this.stateValue !== 'hotBackup') return;
      this.otherPin?.release();
      this.otherPin = undefined;
      this.stateValue = 'inactive';
    });
  }

  // ---- $backupCursor -------------------------------------------------------------------------------------------

  /**
   * `openBackupCursor`: state checks, `oplogEnd` (last applied, before the open), `checkpointTimestamp`, then the
   * storage open (new log file, pin, incremental ids), then the checks after the open (50919, 50915, 50912, 50917);
   * any failure after the open closes it again.
   */
  async openBackupCursor(options: BackupOptions): Promise<OpenBackup> {
    const unlock = await this.mutex.lock();
    try {
      if (this.stateValue === 'fsyncLocked') throw new CommandError(50887, 'The node is currently fsyncLocked.');
      if (this.stateValue === 'backupCursorOpened') {
        throw new CommandError(50886, 'The existing backup cursor must be closed before $backupCursor can succeed.');
      }
      if (this.stateValue === 'hotBackup') {
        throw new CommandError(29098, "The running hot backup ('createBackup' command) must be completed before $backupCursor can succeed.");
      }
      const node = this.node;
      const engine = node.engine;
      const member = node.rs !== undefined && (node.state === 'PRIMARY' || node.state === 'SECONDARY');
      const last = member ? engine.oplogLast() : undefined;
      const oplogEnd = last ? opTimeOf(last) : undefined;
      const checkpointTimestamp = engine.lastCheckpoint().timestamp;

      // beginNonBlockingBackup
      let pin: CheckpointPin | undefined;
      let files: BackupFile[] = [];
      let plan: IncrementalPlan | undefined;
      if (!options.disableIncrementalBackup) {
        if (options.incrementalBackup) {
          // invariant(options.thisBackupName) in WiredTigerKVEngine::beginNonBlockingBackup: mongod aborts.
          if (options.thisBackupName === undefined) await this.abort('incrementalBackup without thisBackupName');
          plan = this.incremental.plan(options);
        }
        ({ pin, files } = beginBackup(engine));
        if (plan) {
          const data = new Set(pin.files.filter((f) => f.kind === 'data').map((f) => f.path));
          this.incremental.register(plan, pin.generation, data);
        }
      }
      const open: OpenBackup = {
        backupId: new UUID(),
        options,
        metadata: {},
        pin,
        files,
        incremental: plan,
        streamLogs: new Set(),
        extendedLogs: new Set(),
      };
      this.current = open;
      this.stateValue = 'backupCursorOpened';
      node.log.info({ backupId: open.backupId.toHexString() }, 'Opened backup cursor');
      try {
        if (this.failPoints.shouldFail('backupCursorErrorAfterOpen')) {
          throw new CommandError(50919, 'Failpoint hit after opening the backup cursor.');
        }
        const requeried = engine.lastCheckpoint().timestamp;
        const moved = (checkpointTimestamp === null) !== (requeried === null) || (checkpointTimestamp !== null && compareTs(checkpointTimestamp, requeried!) !== 0);
        if (moved || this.failPoints.shouldFail('simBackupCursorCheckpointRace')) {
          throw new CommandError(ErrorCodes.BackupCursorOpenConflictWithCheckpoint, 'A checkpoint took place while opening a backup cursor.');
        }
        let oplogStart: { ts: Timestamp; t: Long } | undefined;
        if (oplogEnd) {
          const first = this.failPoints.shouldFail('simBackupCursorNoOplog') ? undefined : engine.oplogFirst();
          if (!first) throw new CommandError(50912, 'No oplog records were found.');
          oplogStart = opTimeOf(first);
          if (this.failPoints.shouldFail('simBackupCursorOplogRollover')) {
            // The oldest entries were truncated meanwhile: the first entry left is newer than oplogEnd.
            oplogStart = { ts: new Timestamp({ t: oplogEnd.ts.high, i: oplogEnd.ts.low + 1 }), t: oplogEnd.t };
          }
          if (compareTs(oplogStart.ts, oplogEnd.ts) > 0) {
            throw new CommandError(
              50917,
              `Oplog rolled over while establishing the backup cursor. oplogStart: ${opTimeString(oplogStart)} oplogEnd: ${opTimeString(oplogEnd)}`,
            );
          }
        }
        const metadata: Document = { backupId: open.backupId, dbpath: node.dbpath };
        if (oplogStart && oplogEnd) {
          metadata.oplogStart = { ts: oplogStart.ts, t: oplogStart.t };
          metadata.oplogEnd = { ts: oplogEnd.ts, t: oplogEnd.t };
        }
        if (checkpointTimestamp !== null && compareTs(checkpointTimestamp, ZERO_TS) !== 0) metadata.checkpointTimestamp = checkpointTimestamp;
        metadata.disableIncrementalBackup = options.disableIncrementalBackup;
        metadata.incrementalBackup = options.incrementalBackup;
        metadata.blockSize = new Int32(options.blockSize);
        if (options.thisBackupName !== undefined) metadata.thisBackupName = options.thisBackupName;
        if (options.srcBackupName !== undefined) metadata.srcBackupName = options.srcBackupName;
        (open as { metadata: Document }).metadata = { metadata };
        return open;
      } catch (e) {
        this.closeNow(open);
        throw e;
      }
    } finally {
      unlock();
    }
  }

  /** False once the node crashed or is shutting down its engine: closing a cursor then changes nothing durable. */
  private engineOpen(): boolean {
    try {
      return this.node.engine.isOpen;
    } catch (e) {
      if (e instanceof CommandError && e.code === ErrorCodes.ShutdownInProgress) return false;
      throw e;
    }
  }

  /** mongod hits an invariant and aborts: no reply, the connection drops, the node is gone (a crash, as kill -9). */
  private abort(what: string): Promise<never> {
    this.node.log.fatal({ what }, 'Invariant failure');
    setImmediate(() => void this.node.crash());
    return new Promise<never>(() => undefined);
  }

  /**
   * The backup cursor went away (killed, timed out, its session reaped, shutdown): `endNonBlockingBackup`. Runs at
   * once, or when a running extend releases the hooks mutex.
   */
  closeBackupCursor(backupId: UUID): void {
    this.mutex.whenFree(() => {
      const open = this.current;
      if (this.stateValue !== 'backupCursorOpened' || !open || !open.backupId.equals(backupId)) return;
      this.closeNow(open);
    });
  }

  private closeNow(open: OpenBackup): void {
    open.pin?.release();
    this.incremental.release(open.incremental);
    const engineOpen = this.engineOpen();
    // force_stop takes effect when the disableIncrementalBackup cursor closes.
    const forceStop = open.options.disableIncrementalBackup;
    if (forceStop && engineOpen) this.incremental.forceStop();
    this.current = undefined;
    this.stateValue = 'inactive';
    this.node.log.info({ backupId: open.backupId.toHexString() }, 'Closed backup cursor');
    // WiredTiger's `__curbackup_close`: closing a force-stop cursor or an incremental cursor without a source (a base)
    // takes a checkpoint, so the new ids (or their removal) are durable and a crash cannot bring old ones back. A
    // failure there is returned by the close, which frees the cursor all the same: logged, the slot stays free.
    if (engineOpen && (forceStop || (open.incremental && !open.incremental.source))) {
      try {
        this.node.engine.checkpoint();
      } catch (e) {
        this.node.log.error({ err: e, backupId: open.backupId.toHexString() }, 'Checkpoint at the close of a backup cursor failed');
      }
    }
  }

  // ---- $backupCursorExtend -------------------------------------------------------------------------------------

  /**
   * `extendBackupCursor`: checks in PSMDB's order, then waits (holding the mutex) until this node's committed snapshot
   * reaches `timestamp`, bounded only by `deadline` (the operation's maxTimeMS) and interrupted when the client
   * disconnects (`disconnected`); a failed wait fails the command, or with `simExtendWaitFailureFatal` aborts the node
   * as early builds did (fatal assertion 29096); then a switch to a new log file, and
   * every log file present up to the one before it that the main stream has not emitted, recorded so the stream will
   * not emit them. Repeated extends repeat earlier extends' files (they are checked against the stream only).
   */
  async extendBackupCursor(backupId: UUID, timestamp: Timestamp, deadline: number | undefined, disconnected?: AbortSignal): Promise<BackupFile[]> {
    const unlock = await this.mutex.lock();
    try {
      if (this.stateValue === 'fsyncLocked') throw new CommandError(50887, 'The node is currently fsyncLocked.');
      if (this.stateValue === 'hotBackup') throw new CommandError(29099, "Hot backup ('createBackup' command) is currently in progress.");
      const open = this.current;
      if (this.stateValue !== 'backupCursorOpened' || !open) {
        throw new CommandError(50886, 'Cannot extend backup cursor because backup cursor is not open');
      }
      if (!open.backupId.equals(backupId)) {
        throw new CommandError(29094, 'backupId provided to $backupCursorExtend does not match active backup');
      }
      const node = this.node;
      if (!node.options.replSet) throw new CommandError(29144, 'Cannot extend backup cursor when replication is not enabled');
      await this.awaitTimestampCommitted(timestamp, deadline, disconnected);
      const engine = node.engine;
      // A duplicate cursor on "log:": all log files present up to the one before a new switch.
      const last = switchLog(engine);
      const files = engine
        .listLogFiles()
        .filter((f) => f.number <= last && !open.streamLogs.has(f.path))
        .map((f): BackupFile => ({ path: f.path, size: f.size, kind: 'log' }));
      for (const f of files) open.extendedLogs.add(f.path);
      return files;
    } finally {
      unlock();
    }
  }

  /**
   * `awaitTimestampCommitted`: this node's committed snapshot at or past `ts` (timestamps compared only). Fails with
   * 50 MaxTimeMSExpired past `deadline`, or 279 ClientDisconnect once the client is gone.
   */
  private async awaitTimestampCommitted(ts: Timestamp, deadline: number | undefined, disconnected?: AbortSignal): Promise<void> {
    for (;;) {
      const node = this.node;
      if (!node.up) throw new CommandError(ErrorCodes.ShutdownInProgress, 'The server is shutting down');
      const snapshot = node.rs ? node.rs.committedSnapshot(node) : ZERO_TS;
      if (compareTs(snapshot, ts) >= 0) return;
      const failure =
        deadline !== undefined && Date.now() >= deadline
          ? { code: ErrorCodes.MaxTimeMSExpired, reason: 'MaxTimeMSExpired: operation exceeded time limit' }
          : disconnected?.aborted
            ? { code: ErrorCodes.ClientDisconnect, reason: 'ClientDisconnect: operation was interrupted because a client disconnected' }
            : undefined;
      if (failure) {
        const at = `Timestamp(${ts.high}, ${ts.low})`;
        if (this.failPoints.isOn('simExtendWaitFailureFatal')) return this.abort(`fassert 29096: Wait for target timestamp ${at} has failed: ${failure.reason}`);
        node.log.error({ id: 29096, timestamp: at }, 'Wait for target timestamp has failed');
        throw new CommandError(failure.code, `Wait for target timestamp has failed: { reason: "${failure.reason}", timestamp: ${at} }`);
      }
      await sleep(deadline === undefined ? 10 : Math.max(1, Math.min(10, deadline - Date.now())));
    }
  }
}
