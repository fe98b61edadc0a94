/**
 * The backup-cursor phases, run by the agent beside the mongod (task queue `cutpoint-agent:<host:port>`): open,
 * keep alive, extend, prove alive, close. Commands are sent raw (aggregate / getMore / killCursors) because the
 * driver's aggregation cursor busy-loops on a tailable cursor (docs/psmdb-behaviour.md section 8).
 *
 * Durable facts live in the workflow, not in this process: the session id is chosen before the open and
 * heartbeated, so a retry after a crash can free a stranded cursor at once with `killSessions` (no 50886 wait),
 * and the keep-alive can continue a cursor from a restarted agent by reusing that session id.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { activityInfo, cancellationSignal, heartbeat, log, sleep } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { tellWorkflow, type TellWorkflow } from './tell-workflow.ts';
import type { Document, MongoClient } from 'mongodb';
import { Long, MongoServerError, UUID } from 'mongodb';
import type { FileKind } from '../../common/manifest.ts';
import type { MongoTarget } from '../../common/target.ts';
import type { Ts } from '../../common/timestamp.ts';
import { sessionWithId, newBackupSessionId } from './backup-session.ts';
import { withClient } from '../../lib/mongo/client.ts';
import type { Repository } from '../../repository/repository.ts';
import { CutpointError } from '../../common/errors.ts';
import { advanceOplogWhile } from './advance-oplog.ts';
import { waitForCommittedSnapshot } from './committed-wait.ts';
import { describeCursorHolder } from './cursor-holder.ts';
import { RETRYABLE_OPEN_CODES, cursorError } from './cursor-errors.ts';
import { fromBsonTimestamp, toBsonTimestamp } from '../../lib/bson-timestamp.ts';
import { startupOptionsFrom, type StartupOptions } from '../../common/startup-options.ts';
import type { IncrementalOpen } from '../../common/incremental.ts';
import { clampRanges } from './copy/reuse-plan.ts';
import { clearIncrementalHistory, incrementalStage, unknownSource } from './incremental-open.ts';

/** One entry of the server's file list, relative to the dbpath. `size` -1 = copy whole (journal files). */
export interface ListedFile {
  index: number;
  path: string;
  size: number;
  kind: FileKind;
  /** An incremental's changed ranges of a data file (repository/file-list.ts). */
  ranges?: Array<[number, number]>;
}

export interface CursorInput {
  target: MongoTarget;
  backupId: string;
  replicaSet: string;
  repo: string;
}

/** What to do when another backup cursor holds the node's single backup slot (server error 50886). */
export type IfBusy = 'fail' | 'wait';

/** How often a waiting open retries a busy node. */
const BUSY_RETRY_MS = 2_000;
/**
 * How long an open waits for the member's first stable checkpoint (mongod takes one a minute), and how often it
 * looks: a cursor on an unstable checkpoint (no `checkpointTimestamp`) pins files that cannot be recovered to a point
 * in time (docs/psmdb-behaviour.md section 7).
 */
const STABLE_CHECKPOINT_WAIT_MS = 5 * 60_000;
const STABLE_CHECKPOINT_RETRY_MS = 1_000;
/** Heartbeat period of activities that wait on the server: cancellation reaches an activity only through one. */
const BEAT_MS = 1_000;

/** What the workflow keeps about an open cursor (small: ids, timestamps, counts). */
export interface OpenedCursor {
  node: string;
  cursorId: string;
  sessionId: string;
  /** The server's `metadata.backupId`. */
  serverBackupId: string;
  dbpath: string;
  oplogStart: Ts | null;
  oplogEnd: Ts | null;
  checkpointTimestamp: Ts | null;
  files: number;
  /** Listed bytes (data files at their fileSize, journal files at their size when listed). */
  bytes: number;
  /** The node's startup options a restore repeats (its getCmdLineOpts; common/startup-options.ts). */
  startupOptions: StartupOptions;
  /** An incremental cursor: what it was opened as (an incremental whose source the node forgot falls back to a base). */
  incremental?: OpenedIncremental;
}

export interface OpenedIncremental {
  kind: 'base' | 'incremental';
  /** `thisBackupName` of the open that succeeded. */
  name: string;
  blockSizeMB: number;
  /** Why a base was opened although a source was named. */
  chainBreak?: string;
  /** Bytes of the data files' listed ranges (a base: the data files' sizes). */
  listedBytes: number;
}

/**
 * Cursors this process is closing. The keep-alive is cancelled before the close, but it learns of that only at its
 * next heartbeat; a getMore racing the close must end the keep-alive quietly, not report the cursor lost.
 */
const closing = new Set<string>();
/**
 * Keep-alive loops running in this process, by cursor id. A close waits (briefly) for its cursor's loop to end, so
 * that the keep-alive activity has completed before its workflow, which may finish right after the close, does:
 * otherwise the worker logs a completion for a workflow that is already closed.
 */
const keepAlives = new Map<string, Promise<unknown>>();
/** Longest a close waits for its keep-alive loop (which checks for the close every 250 ms). */
const KEEPALIVE_STOP_WAIT_MS = 2000;

export interface CursorRef {
  target: MongoTarget;
  /** The backup and replica set the cursor serves (for logs). */
  backupId: string;
  replicaSet: string;
  cursorId: string;
  sessionId: string;
}

export interface AgentContext {
  /** host:port of the mongod this agent serves. */
  mongod: string;
  /** The dbpath as this agent sees it, when it differs from the server's (containers). */
  dbpath?: string;
  /** The repository at a path (as this worker sees it): where the file list goes, out of workflow history. */
  repository: (repo: string) => Repository;
  /** To tell whether a busy node's cursor belongs to one of our running backups; without it the message says less. */
  temporal?: Client;
}

const optimeTs = (o: unknown): Ts | null => fromBsonTimestamp((o as { ts?: unknown } | undefined)?.ts);

function relative(dbpath: string, filename: string): string {
  const base = dbpath.endsWith('/') ? dbpath : `${dbpath}/`;
  if (!filename.startsWith(base)) throw new Error(`backup cursor listed ${filename}, outside the dbpath ${dbpath}`);
  return filename.slice(base.length);
}

const kindOf = (rel: string): FileKind => (rel.startsWith('journal/') ? 'journal' : 'data');

/**
 * The cursor's documents as the file list: one entry per file, relative to the dbpath. Journal files are copied whole
 * (WiredTiger appends to preallocated files after the list was made). An incremental cursor lists a data file once
 * per changed range (`offset 0, length 0` when unchanged): its entry carries the ranges, clamped to its size.
 */
export function listedFiles(docs: Document[], serverDbpath: string, incremental: boolean): ListedFile[] {
  const byPath = new Map<string, ListedFile & { listed: Array<{ offset: number; length: number }> }>();
  for (const d of docs) {
    const path = relative(serverDbpath, String(d.filename));
    let f = byPath.get(path);
    if (!f) {
      const kind = kindOf(path);
      f = { index: byPath.size, path, size: kind === 'journal' ? -1 : Number(d.fileSize), kind, listed: [] };
      byPath.set(path, f);
    }
    if (incremental && f.kind === 'data') f.listed.push({ offset: Number(d.offset ?? 0), length: Number(d.length ?? 0) });
  }
  return [...byPath.values()].map(({ listed, ...f }) => (incremental && f.kind === 'data' ? { ...f, ranges: clampRanges(listed, f.size) } : f));
}

/** Reads every file document of the cursor: first batch, then getMore until an empty batch (tailable EOF). */
async function drain(client: MongoClient, session: ReturnType<typeof sessionWithId>, firstBatch: Document[], cursorId: Long): Promise<Document[]> {
  const docs = [...firstBatch];
  for (;;) {
    const r = await client.db('admin').command({ getMore: cursorId, collection: '$cmd.aggregate' }, { session });
    const batch = (r.cursor as { nextBatch: Document[] }).nextBatch;
    if (batch.length === 0) return docs;
    docs.push(...batch);
    heartbeat({ listed: docs.length });
  }
}

/** Builds the agent's cursor activities, bound to its mongod. */
export function backupCursorActivities(ctx: AgentContext) {
  const node = ctx.mongod;

  /** Frees whatever a previous attempt may have left open under its recorded session id. */
  async function freeStrandedSession(client: MongoClient, sessionId: string): Promise<void> {
    try {
      await client.db('admin').command({ killSessions: [{ id: new UUID(sessionId) }] });
    } catch {
      // Nothing to free, or the session already expired: the open below tells.
    }
  }

  return {
    /**
     * Opens the backup's repository as this agent will write it, with the agent's own password (its environment):
     * run on every chosen agent before any cursor opens, so a missing or wrong password fails the backup at once,
     * naming the agent. Writes nothing. Then `tell` (the parent: this agent is ready).
     */
    async checkRepositoryAccess(input: { repo: string; tell?: TellWorkflow }): Promise<{ encrypted: boolean }> {
      const repo = ctx.repository(input.repo);
      try {
        await repo.open();
        const encrypted = await repo.encrypted();
        await tellWorkflow(ctx.temporal, input.tell);
        return { encrypted };
      } catch (err) {
        if (!(err instanceof CutpointError)) throw err;
        throw new CutpointError(err.code, `the agent of ${node} cannot open repository ${input.repo}: ${err.message}`, { node }, { cause: err });
      }
    },

    /**
     * Opens `$backupCursor`, retrying 50915/50917 as PBM does, drains the file list into the repository and returns
     * the metadata. Heartbeats its session id first, so a retry frees a cursor stranded by a crash of this attempt.
     *
     * A node whose slot is held by another cursor (50886) fails with BACKUP_CURSOR_BUSY naming the holder when it is
     * one of our running backups, or, with `ifBusy: 'wait'`, is retried until the slot frees. Cancelled (the
     * workflow waits for that), the activity never leaves a cursor behind: a command in flight is let finish, then
     * its session is killed. Once open, `tell` (the parent), with the cursor's `oplogEnd` added; a failed signal closes
     * the cursor and fails the attempt.
     */
    async openBackupCursor(input: CursorInput & { ifBusy?: IfBusy; incremental?: IncrementalOpen; tell?: TellWorkflow }): Promise<OpenedCursor> {
      const previous = activityInfo().heartbeatDetails as { sessionId?: string } | undefined;
      const sessionId = newBackupSessionId();
      let detail: Record<string, unknown> = { sessionId };
      heartbeat(detail);
      // Beat while the server works (an open can take long on a loaded node, or wait for a busy slot): it keeps the
      // heartbeat timeout short and lets a cancellation in.
      const beat = setInterval(() => heartbeat(detail), BEAT_MS);
      const signal = cancellationSignal();
      try {
        return await withClient(input.target, { host: node }, async (client) => {
          if (previous?.sessionId) await freeStrandedSession(client, previous.sessionId);
          const session = sessionWithId(client, sessionId);
          let reply: Document | undefined;
          let opened = false;
          let busyRounds = 0;
          const openedAt = Date.now();
          // An incremental cursor: a fresh name for every open command (a failed open consumes its name on the
          // server), and a base starts from a cleared history.
          const incr = input.incremental;
          let source = incr?.srcBackupName;
          let chainBreak: string | undefined;
          let opens = 0;
          let name = '';
          let clear = incr !== undefined && source === undefined;
          try {
            for (let attempt = 1; ; attempt++) {
              try {
                if (clear) {
                  await clearIncrementalHistory(client, session);
                  clear = false;
                }
                name = `${input.backupId}.${input.replicaSet}.${sessionId.slice(0, 8)}.${++opens}`;
                const stage = incr ? incrementalStage({ name, blockSizeMB: incr.blockSizeMB, source }) : {};
                reply = await client.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: stage }], cursor: {} }, { session });
                opened = true;
                const first = (reply.cursor as { firstBatch: Document[]; id: Long | number }).firstBatch[0] as { metadata?: Document } | undefined;
                if (first?.metadata?.oplogEnd && !first.metadata.checkpointTimestamp) {
                  // A replica-set member without a stable checkpoint yet: close this cursor, wait for one.
                  await client.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [(reply.cursor as { id: Long | number }).id] }, { session });
                  opened = false;
                  if (Date.now() - openedAt > STABLE_CHECKPOINT_WAIT_MS) {
                    throw new CutpointError(
                      'NO_STABLE_CHECKPOINT',
                      `${node} has taken no stable checkpoint in ${STABLE_CHECKPOINT_WAIT_MS / 60_000} minutes (just started, or in initial sync): its files could not be restored to a point in time; back up another member (--node) or retry later`,
                      { node },
                    );
                  }
                  detail = { sessionId, waitingForStableCheckpoint: true };
                  attempt = 0;
                  await sleep(STABLE_CHECKPOINT_RETRY_MS);
                  continue;
                }
                break;
              } catch (e) {
                const code = e instanceof MongoServerError ? Number(e.code) : 0;
                if (signal.aborted) throw e;
                const forgot = source !== undefined ? unknownSource(e) : undefined;
                if (forgot) {
                  // The node no longer has the chain's last name (restarted uncleanly, history rotated or cleared by
                  // another tool): a base, from a cleared history, with the reason.
                  chainBreak = `${node} no longer knows the previous backup's incremental name ${source} (${forgot}): it restarted uncleanly, or its incremental history was rotated or cleared`;
                  log.warn('incremental chain broken: opening a base', { node, reason: chainBreak });
                  source = undefined;
                  clear = true;
                  attempt = 0;
                  continue;
                }
                if (RETRYABLE_OPEN_CODES.has(code) && attempt < 10) {
                  detail = { sessionId, retry: attempt, code };
                  await sleep(Math.min(attempt, 5) * 1000);
                  continue;
                }
                if (code === 50886 && input.ifBusy === 'wait') {
                  // Look the holder up now and then only: the list of running backups is a visibility query.
                  if (busyRounds++ % 30 === 0) {
                    const holder = await describeCursorHolder(ctx.temporal, node, activityInfo().workflowExecution?.workflowId ?? '');
                    log.info('backup cursor slot busy: waiting', { node, holder });
                    detail = { sessionId, waitingForSlot: holder };
                  }
                  attempt = 0;
                  await sleep(BUSY_RETRY_MS);
                  continue;
                }
                if (code === 50886) {
                  const holder = await describeCursorHolder(ctx.temporal, node, activityInfo().workflowExecution?.workflowId ?? '');
                  throw new CutpointError(
                    'BACKUP_CURSOR_BUSY',
                    `${node}: another backup cursor is open (${(e as Error).message}); it is held by ${holder}. ` +
                      "Start the backup with ifBusy 'wait' (CLI: --if-busy wait) to wait for it, or choose another member (--node)",
                    { node },
                    { cause: e },
                  );
                }
                throw cursorError(e, node, 'open');
              }
            }
            if (signal.aborted) throw signal.reason ?? new Error('cancelled');
            const raw = reply.cursor as { firstBatch: Document[]; id: Long | number };
            // The driver turns a cursor id below 2^53 into a JS number (promoteLongs); a getMore with a double is
            // refused by mongod ("must be of type long"), so keep it a long (random 64-bit ids: ~1 in 1000 opens).
            const cursor = { firstBatch: raw.firstBatch, id: typeof raw.id === 'number' ? Long.fromNumber(raw.id) : raw.id };
            const [first, ...rest] = cursor.firstBatch;
            const meta = (first as { metadata?: Document } | undefined)?.metadata;
            if (!meta) throw new Error(`${node}: $backupCursor returned no metadata document`);
            const files = await drain(client, session, rest, cursor.id);
            const serverDbpath = String(meta.dbpath);
            const localDbpath = ctx.dbpath ?? serverDbpath;
            const listed = listedFiles(files, serverDbpath, incr !== undefined && source !== undefined);
            // storage.bson is never listed by the server (docs/psmdb-behaviour.md section 2.3); PBM adds it, so do we.
            const storageBson = await stat(join(localDbpath, 'storage.bson')).catch(() => undefined);
            if (storageBson) listed.push({ index: listed.length, path: 'storage.bson', size: -1, kind: 'storage.bson' });
            await ctx.repository(input.repo).fileList(input.backupId, input.replicaSet).write(listed.map(({ index: _index, ...f }) => f));
            if (signal.aborted) throw signal.reason ?? new Error('cancelled');
            // What a restore must start mongod with to read these files (layout, encryption) and to keep the
            // cluster's access control: recorded now, from the node whose files these are.
            const startupOptions = startupOptionsFrom((await client.db('admin').command({ getCmdLineOpts: 1 })).parsed);
            const oplogEnd = optimeTs(meta.oplogEnd);
            log.info('backup cursor open', { node, files: listed.length, oplogEnd: oplogEnd && `${oplogEnd.t},${oplogEnd.i}`, freedPrevious: previous?.sessionId !== undefined });
            if (signal.aborted) throw signal.reason ?? new Error('cancelled');
            await tellWorkflow(ctx.temporal, input.tell, { oplogEnd });
            return {
              node,
              cursorId: cursor.id.toString(),
              sessionId,
              serverBackupId: (meta.backupId as UUID).toHexString(true),
              dbpath: localDbpath,
              oplogStart: optimeTs(meta.oplogStart),
              oplogEnd,
              checkpointTimestamp: fromBsonTimestamp(meta.checkpointTimestamp),
              files: listed.length,
              bytes: listed.reduce((s, f) => s + Math.max(0, f.size), 0),
              startupOptions,
              ...(incr
                ? {
                    incremental: {
                      kind: source !== undefined ? 'incremental' : 'base',
                      name,
                      blockSizeMB: incr.blockSizeMB,
                      listedBytes: listed.reduce((n, f) => n + (f.kind !== 'data' ? 0 : f.ranges ? f.ranges.reduce((m, [, l]) => m + l, 0) : f.size), 0),
                      ...(chainBreak ? { chainBreak } : {}),
                    } satisfies OpenedIncremental,
                  }
                : {}),
            };
          } catch (e) {
            // Whatever failed after the open (the list, the repository, a cancellation), no cursor outlives this
            // attempt: the workflow never learned its id, so nobody else would close it before the session expires.
            if (opened) await freeStrandedSession(client, sessionId);
            throw e;
          }
        });
      } finally {
        clearInterval(beat);
      }
    },

    /**
     * Keeps the cursor alive with getMore every `intervalMs` (well inside the server's idle limit) until cancelled.
     * A failed getMore is fatal for the backup (CURSOR_LOST): PBM ignores it and can commit a broken copy.
     */
    async keepBackupCursorAlive(input: CursorRef & { intervalMs: number }): Promise<void> {
      const signal = cancellationSignal();
      const loop = withClient(input.target, { host: node }, async (client) => {
        const session = sessionWithId(client, input.sessionId);
        for (let round = 1; ; round++) {
          try {
            await client.db('admin').command({ getMore: Long.fromString(input.cursorId), collection: '$cmd.aggregate' }, { session });
          } catch (e) {
            if (closing.has(input.cursorId) || signal.aborted) return;
            throw cursorError(e, node, 'keep-alive');
          }
          const at = new Date().toISOString();
          heartbeat({ round, at });
          // sleep() from @temporalio/activity rejects with CancelledFailure when the workflow cancels us; a close in
          // this process ends the loop sooner, before the workflow that cancelled us completes. Beating every second
          // (not once a round) lets the workflow notice a dead agent within a short heartbeat timeout, whatever the
          // interval.
          for (let slept = 0; slept < input.intervalMs && !closing.has(input.cursorId); slept += 250) {
            await sleep(Math.min(250, input.intervalMs - slept));
            if (slept % BEAT_MS === 0) heartbeat({ round, at });
          }
          if (signal.aborted || closing.has(input.cursorId)) return;
        }
      });
      keepAlives.set(input.cursorId, loop);
      try {
        await loop;
      } finally {
        if (keepAlives.get(input.cursorId) === loop) keepAlives.delete(input.cursorId);
      }
    },

    /**
     * `$backupCursorExtend` to `ts`: waits (client-side, cancellable, bounded by `maxWaitMs`) until this node's
     * committed snapshot reaches it, then extends, never interrupting the extend itself (committed-wait.ts), reads its
     * cursor to the end, and appends the new journal files to the file list.
     */
    async extendBackupCursor(input: CursorInput & { serverBackupId: string; to: Ts; maxWaitMs: number }): Promise<{ added: number; files: number }> {
      return withClient(input.target, { host: node, timeoutMs: 30_000 }, async (client) => {
        const to = toBsonTimestamp(input.to);
        let detail: Record<string, unknown> = { waitingFor: input.to };
        const beat = setInterval(() => heartbeat(detail), BEAT_MS);
        const signal = cancellationSignal();
        try {
          let reached = false;
          const advancing = advanceOplogWhile({
            target: input.target,
            client,
            data: { msg: 'cutpoint: backup cursor extend', backupId: input.backupId, waitingFor: to },
            to,
            done: () => reached || signal.aborted,
          }).then(
            (notes) => notes > 0 && log.info('no-op notes written on the primary while the extend waited', { node, notes }),
            (e: unknown) => log.info('could not write a no-op note on the primary; the extend waits for its periodic no-op write', { node, error: String(e) }),
          );
          try {
            await waitForCommittedSnapshot(client, to, {
              node,
              deadline: Date.now() + input.maxWaitMs,
              signal,
              onPoll: (at) => (detail = { waitingFor: input.to, committed: at ? fromBsonTimestamp(at) : null }),
            });
          } catch (e) {
            if (e instanceof CutpointError) throw e;
            signal.throwIfAborted();
            throw cursorError(e, node, 'extend');
          } finally {
            reached = true;
            await advancing;
          }
          // The node is there: the extend returns at once. Not interrupted from here on, not even by a cancel (the
          // workflow waits for this activity); its result is a cursor, read to its end (a busy node can list more
          // than one batch of journal files).
          detail = { extending: input.to };
          let docs: Document[];
          try {
            docs = await client
              .db('admin')
              .aggregate([{ $backupCursorExtend: { backupId: new UUID(input.serverBackupId), timestamp: to } }])
              .toArray();
          } catch (e) {
            throw cursorError(e, node, 'extend');
          }
          // A cancelled extend must not write into a backup whose data the workflow is removing.
          signal.throwIfAborted();
          const list = ctx.repository(input.repo).fileList(input.backupId, input.replicaSet);
          const journal = docs.map((d) => {
            const filename = String(d.filename);
            const at = filename.lastIndexOf('/journal/');
            return { path: at >= 0 ? filename.slice(at + 1) : filename, size: -1, kind: 'journal' as const };
          });
          // Extend results are cumulative (they repeat earlier extends' files): the list skips paths it holds.
          const { info, added } = await list.append(journal);
          log.info('backup cursor extended', { node, to: `${input.to.t},${input.to.i}`, listed: docs.length, journalFilesAdded: added.length, files: info.count });
          return { added: added.length, files: info.count };
        } finally {
          clearInterval(beat);
        }
      });
    },

    /**
     * A getMore after the copy: the cursor (and so the pin on every block copied) lived through the whole copy. Then
     * `tell` (the parent: copied).
     */
    async proveBackupCursorAlive(input: CursorRef & { tell?: TellWorkflow }): Promise<void> {
      await withClient(input.target, { host: node }, async (client) => {
        const session = sessionWithId(client, input.sessionId);
        try {
          await client.db('admin').command({ getMore: Long.fromString(input.cursorId), collection: '$cmd.aggregate' }, { session });
        } catch (e) {
          throw cursorError(e, node, 'final check');
        }
      });
      await tellWorkflow(ctx.temporal, input.tell);
    },

    /** killCursors in the cursor's session; also frees the session, so nothing stays pinned. Idempotent. */
    async closeBackupCursor(input: CursorRef): Promise<{ killed: boolean }> {
      closing.add(input.cursorId);
      setTimeout(() => closing.delete(input.cursorId), 10 * 60_000).unref();
      return withClient(input.target, { host: node }, async (client) => {
        const session = sessionWithId(client, input.sessionId);
        const r = await client.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [Long.fromString(input.cursorId)] }, { session });
        const killed = (r.cursorsKilled as unknown[]).length > 0;
        if (!killed) await freeStrandedSession(client, input.sessionId);
        const loop = keepAlives.get(input.cursorId);
        if (loop) await Promise.race([loop.catch(() => undefined), delay(KEEPALIVE_STOP_WAIT_MS)]);
        log.info('backup cursor closed', { node, killed });
        return { killed };
      });
    },
  };
}

export type BackupCursorActivities = ReturnType<typeof backupCursorActivities>;

