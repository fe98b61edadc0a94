/**
 * The copy phase on the agent: plan batches over the file list, then copy each batch of files out of the dbpath into
 * the repository (data files up to their listed size, journal files and storage.bson whole), hashing as it goes.
 *
 * Progress (files done, the durable checkpoint inside the file in flight) is heartbeated at most once a second, so a
 * retried batch (agent crash, worker restart) skips the files already stored and resumes the file in flight from its
 * last checkpoint. The whole-backup
 * throttle is shared by the batches of a replica set in this process and follows `setThrottle` within a second: the
 * batch polls its workflow's `throttle` query.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { activityInfo, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { CopyBatch } from '../../common/backup-types.ts';
import { throttleQuery } from '../../common/messages.ts';
import { copyToStorage } from './copy/copy-file.ts';
import { limiterKey, rateLimiters } from './copy/rate-limiter.ts';
import type { BatchFile, Repository } from '../../repository/repository.ts';
import type { CursorInput } from './backup-cursor.ts';
import { batchFileLimit } from './batch-size.ts';

export interface CopyContext {
  /** The dbpath as this agent sees it, when it differs from the server's. */
  dbpath?: string;
  repository: (repo: string) => Repository;
  /** For polling the workflow's current throttle; without it the batch keeps its starting rate. */
  temporal?: Client;
}

const HEARTBEAT_EVERY_MS = 1000;

const KiB = 1024;
const MiB = 1024 * KiB;
const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.floor(n)));

/**
 * Read and checkpoint sizes for a copy at `rate` bytes/s (0 = unlimited). Unthrottled: copyFile's defaults (1 MiB
 * reads, a durable checkpoint every 64 MiB). Throttled, both shrink with the rate: a read is about a quarter second
 * of copying (smooth throttling, frequent progress) and a checkpoint about two seconds, so a crash mid-file costs
 * seconds of re-reading, not a 64 MiB stretch that could take minutes at a low rate.
 */
export function copySizes(rate: number): { chunkBytes: number; checkpointBytes: number } {
  if (!(rate > 0)) return { chunkBytes: MiB, checkpointBytes: 64 * MiB };
  const chunkBytes = clamp(rate / 4, 16 * KiB, MiB);
  return { chunkBytes, checkpointBytes: clamp(rate * 2, chunkBytes, 64 * MiB) };
}

/** What a copy batch heartbeats: its resume point, and its bytes so far (read by `backupProgress` for live progress). */
export interface BatchHeartbeat {
  done: BatchFile[];
  /** Bytes copied by this batch so far, the file in flight included (progress only, not a resume point). */
  bytes?: number;
  /** The file in flight and the offset of its last durable checkpoint. */
  current?: { index: number; offset: number };
}

export function copyActivities(ctx: CopyContext) {
  return {
    /**
     * Splits the file list into batches of at most `maxFiles` files (more for long lists: batch-size.ts) and about
     * `maxBytes` bytes (a larger file is a batch of its own). Whole files (journal, storage.bson) are counted at their
     * current size.
     */
    async planCopyBatches(
      input: CursorInput & {
        dbpath: string;
        maxFiles: number;
        maxBytes: number;
        /** Files before this index were copied in an earlier round: only their journal files (grown since) again. */
        journalOnlyBefore?: number;
        /** Number of the first batch (batch results of earlier rounds keep theirs). */
        firstBatchNo?: number;
      },
    ): Promise<{ batches: CopyBatch[]; listed: number }> {
      const list = ctx.repository(input.repo).fileList(input.backupId, input.replicaSet);
      const dbpath = ctx.dbpath ?? input.dbpath;
      const first = input.firstBatchNo ?? 0;
      const listedNow = (await list.info())?.count ?? 0;
      const maxFiles = batchFileLimit(input.maxFiles, listedNow - (input.journalOnlyBefore ?? 0));
      const batches: CopyBatch[] = [];
      let cur: CopyBatch | undefined;
      let listed = 0;
      for await (const e of list.entries()) {
        listed = e.index + 1;
        if (e.index < (input.journalOnlyBefore ?? 0) && e.kind !== 'journal') {
          cur = undefined; // a batch is a contiguous range of the list
          continue;
        }
        const size = e.size >= 0 ? e.size : ((await stat(join(dbpath, e.path)).catch(() => undefined))?.size ?? 0);
        if (!cur || cur.to - cur.from >= maxFiles || (cur.bytes > 0 && cur.bytes + size > input.maxBytes)) {
          cur = { no: first + batches.length, from: e.index, to: e.index, bytes: 0 };
          batches.push(cur);
        }
        cur.to = e.index + 1;
        cur.bytes += size;
      }
      // Largest first: the copies run in parallel, and a large file started last would leave one copy running
      // alone at the end. Batch numbers keep the list order (the manifest is assembled by file index).
      batches.sort((a, b) => b.bytes - a.bytes || a.no - b.no);
      return { batches, listed };
    },

    /** Copies files `[batch.from, batch.to)` of the list; writes the batch's results to the repository. */
    async copyBatch(
      input: CursorInput & { dbpath: string; batch: CopyBatch; throttleWorkflowId: string; bytesPerSec?: number },
    ): Promise<{ files: number; bytes: number; bytesRead: number; dataBytesRead: number }> {
      const repo = ctx.repository(input.repo);
      const dbpath = ctx.dbpath ?? input.dbpath;
      const entries = await repo.fileList(input.backupId, input.replicaSet).read(input.batch.from, input.batch.to);
      const previous = activityInfo().heartbeatDetails as BatchHeartbeat | undefined;
      const state: BatchHeartbeat = { done: [...(previous?.done ?? [])] };
      let doneBytes = state.done.reduce((sum, f) => sum + f.size, 0);
      const finished = new Set(state.done.map((f) => f.index));
      const signal = cancellationSignal();
      const lease = rateLimiters.acquire(limiterKey(input.backupId, input.replicaSet), input.bytesPerSec);
      const handle = ctx.temporal?.workflow.getHandle(input.throttleWorkflowId);
      const poll = setInterval(() => {
        void handle
          ?.query(throttleQuery)
          .then((rate) => lease.limiter.setRate(rate))
          .catch(() => undefined);
      }, 1000);
      // Heartbeats carry the done list, so one per file would re-encode it thousands of times in a batch of small
      // files; the state is durable whenever it is read, so sending the latest at most every second loses nothing
      // but up to a second of work on a retry.
      let lastBeat = 0;
      const beat = () => {
        const now = Date.now();
        if (now - lastBeat < HEARTBEAT_EVERY_MS) return;
        lastBeat = now;
        heartbeat(state);
      };
      // Beat on a timer too: a copy stalled on a slow disk or a low throttle still shows it is alive, so the
      // heartbeat timeout can stay short and a dead agent's batch is retried within seconds.
      const timer = setInterval(beat, HEARTBEAT_EVERY_MS);
      // Bytes read from the dbpath by this attempt; data files apart, so tests can show none is read twice.
      let bytesRead = 0;
      let dataBytesRead = 0;
      try {
        if (handle) lease.limiter.setRate(await handle.query(throttleQuery).catch(() => lease.limiter.rate));
        for (const e of entries) {
          if (finished.has(e.index)) continue;
          const resumeFrom = previous?.current?.index === e.index ? previous.current.offset : undefined;
          state.current = { index: e.index, offset: resumeFrom ?? 0 };
          const result = await copyToStorage({
            storage: repo.storage,
            path: repo.dataFilePath(input.backupId, input.replicaSet, e.path),
            src: join(dbpath, e.path),
            length: e.size >= 0 ? e.size : 'whole',
            limiter: lease.limiter,
            signal,
            resumeFrom,
            ...copySizes(lease.limiter.rate),
            onCheckpoint: (offset) => {
              state.current = { index: e.index, offset };
              beat();
            },
            onProgress: (offset) => {
              state.bytes = doneBytes + offset;
              beat();
            },
          });
          bytesRead += result.bytesRead;
          if (e.kind === 'data') dataBytesRead += result.bytesRead;
          state.done.push({ index: e.index, path: e.path, size: result.size, sha256: result.sha256, kind: e.kind });
          delete state.current;
          doneBytes += result.size;
          state.bytes = doneBytes;
          beat();
        }
      } finally {
        clearInterval(timer);
        clearInterval(poll);
        lease.release();
      }
      await repo.writeBatchResult(input.backupId, input.replicaSet, input.batch.no, { files: state.done });
      log.info('copy batch stored', { batch: input.batch.no, files: state.done.length, bytesRead, resumed: previous !== undefined });
      return { files: state.done.length, bytes: state.done.reduce((s, f) => s + f.size, 0), bytesRead, dataBytesRead };
    },
  };
}

export type CopyActivities = ReturnType<typeof copyActivities>;
