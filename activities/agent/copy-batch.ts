/**
 * The copy phase on the agent: plan batches over the file list, then copy each batch of files out of the dbpath into
 * the repository (data files up to their listed size, journal files and storage.bson whole), hashing each chunk as it goes.
 *
 * Progress (files done, the durable checkpoint inside the file in flight) is heartbeated at most once a second, so a
 * retried batch (agent crash, worker restart) skips the files already stored and resumes the file in flight from its
 * last checkpoint. The whole-backup
 * throttle is shared by the batches of a replica set in this process and follows `setThrottle` within a second: the
 * batch polls its workflow's `throttle` query.
 */
import { stat } from 'node:fs/promises';
import { CutpointError } from '../../common/errors.ts';
import { join } from 'node:path';
import { cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { CopyBatch } from '../../common/backup-types.ts';
import { throttleQuery } from '../../common/messages.ts';
import { copyFileChunks } from './copy/copy-chunks.ts';
import { copyFileRanges } from './copy/copy-ranges.ts';
import { FIXED_CHUNK_BYTES } from '../../repository/v2/chunker.ts';
import type { ManifestFile } from '../../common/manifest.ts';
import { limiterKey, rateLimiters } from './copy/rate-limiter.ts';
import type { BatchFile, Repository } from '../../repository/repository.ts';
import type { CursorInput } from './backup-cursor.ts';
import { batchFileLimit } from './batch-size.ts';
import { copyMeter } from '../../lib/metrics.ts';

export interface CopyContext {
  /** The dbpath as this agent sees it, when it differs from the server's. */
  dbpath?: string;
  repository: (repo: string) => Repository;
  /** For polling the workflow's current throttle; without it the batch keeps its starting rate. */
  temporal?: Client;
  /** The mongod this agent serves: the label of its copy metrics (lib/metrics.ts); none without it. */
  mongod?: string;
}

const HEARTBEAT_EVERY_MS = 1000;

const KiB = 1024;
const MiB = 1024 * KiB;
const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.floor(n)));

/**
 * The read size of a copy at `rate` bytes/s (0 = unlimited): 1 MiB unthrottled; throttled, about a quarter second of
 * copying (smooth throttling, frequent progress), at least 16 KiB.
 */
export function readSize(rate: number): number {
  return rate > 0 ? clamp(rate / 4, 16 * KiB, MiB) : MiB;
}

/**
 * What a copy batch heartbeats (read by `backupProgress` for live progress, and by tests): its bytes so far, the
 * files its saved result holds, the file in flight. The resume point itself is the saved result (copyBatch).
 */
export interface BatchHeartbeat {
  /** Bytes copied by this batch so far, the file in flight included. */
  bytes?: number;
  /** Files in the batch's saved result: durable, skipped by a retried attempt. */
  saved: number;
  /** File-list index of the file in flight. */
  current?: number;
  /** A flush ran while the file in flight was copied: some of its chunks are durable and indexed (a time flush always follows storing one). */
  currentFlushed?: boolean;
}

/** How often a batch makes its chunks durable and saves the files finished so far (its resume point). */
export const SAVE_EVERY_MS = 2000;

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

    /**
     * Copies files `[batch.from, batch.to)` of the list into the repository as chunks; writes the batch's result.
     *
     * The result file is also the batch's resume point: every {@link SAVE_EVERY_MS} (and at the end) the chunks
     * stored so far are made durable and indexed, then the files finished so far are written as the batch's result.
     * A retried attempt (agent crash) reads it and skips those files; the file that was in flight is copied again
     * from its start, its chunks already stored found in the index and not stored twice.
     */
    async copyBatch(
      input: CursorInput & {
        dbpath: string;
        batch: CopyBatch;
        throttleWorkflowId: string;
        bytesPerSec?: number;
        /** An incremental's parent backup: a data file listed with changed ranges reuses its chunks for the rest. */
        parent?: string;
      },
    ): Promise<{ files: number; bytes: number; bytesRead: number; dataBytesRead: number; bytesStored: number }> {
      const repo = ctx.repository(input.repo);
      const dbpath = ctx.dbpath ?? input.dbpath;
      const entries = await repo.fileList(input.backupId, input.replicaSet).read(input.batch.from, input.batch.to);
      const parentFiles = input.parent && entries.some((e) => e.ranges) ? await parentFilesOf(repo, input.parent, input.replicaSet) : undefined;
      const saved = await repo.readBatchResult(input.backupId, input.replicaSet, input.batch.no);
      const done: BatchFile[] = [...(saved?.files ?? [])];
      const finished = new Set(done.map((f) => f.index));
      const state: BatchHeartbeat = { saved: done.length };
      let doneBytes = done.reduce((sum, f) => sum + f.size, 0);
      const signal = cancellationSignal();
      const lease = rateLimiters.acquire(limiterKey(input.backupId, input.replicaSet), input.bytesPerSec);
      const handle = ctx.temporal?.workflow.getHandle(input.throttleWorkflowId);
      const meter = ctx.mongod ? copyMeter(ctx.mongod) : undefined;
      meter?.rate(lease.limiter.rate);
      const poll = setInterval(() => {
        void handle
          ?.query(throttleQuery)
          .then((rate) => {
            lease.limiter.setRate(rate);
            meter?.rate(rate);
          })
          .catch(() => undefined);
      }, 1000);
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
      const writer = await repo.chunkWriter();
      /** Chunks durable and indexed first, then the files that use them: the result never names a chunk not stored. */
      const save = async () => {
        await writer.flush();
        await repo.writeBatchResult(input.backupId, input.replicaSet, input.batch.no, { files: done });
        state.saved = done.length;
        lastSave = Date.now();
      };
      let lastSave = Date.now();
      // Bytes read from the dbpath by this attempt; data files apart, so tests can show none is read twice.
      let bytesRead = 0;
      let dataBytesRead = 0;
      try {
        if (handle) lease.limiter.setRate(await handle.query(throttleQuery).catch(() => lease.limiter.rate));
        meter?.rate(lease.limiter.rate);
        for (const e of entries) {
          if (finished.has(e.index)) continue;
          state.current = e.index;
          delete state.currentFlushed;
          const flushesBefore = writer.flushes;
          let metered = 0;
          const onProgress = (offset: number) => {
            meter?.copied(Math.max(0, offset - metered));
            metered = Math.max(metered, offset);
            state.bytes = doneBytes + offset;
            if (writer.flushes !== flushesBefore) state.currentFlushed = true;
            beat();
          };
          const from = e.ranges && e.kind === 'data' && e.size >= 0 ? parentFiles?.get(e.path) : undefined;
          const src = join(dbpath, e.path);
          const common = { src, writer, limiter: lease.limiter, signal, readBytes: readSize(lease.limiter.rate), onProgress };
          // A file the parent holds is copied by its changed ranges; a new file (or a full backup's) whole.
          const result = from?.chunks
            ? await copyFileRanges({ ...common, size: e.size, ranges: e.ranges!, parent: { size: from.size, chunks: from.chunks }, chunkBytes: FIXED_CHUNK_BYTES })
            : await copyFileChunks({ ...common, length: e.size >= 0 ? e.size : 'whole', kind: e.kind });
          bytesRead += result.bytesRead;
          if (e.kind === 'data') dataBytesRead += result.bytesRead;
          done.push({ index: e.index, path: e.path, size: result.size, kind: e.kind, chunks: result.chunks });
          delete state.current;
          delete state.currentFlushed;
          doneBytes += result.size;
          state.bytes = doneBytes;
          if (Date.now() - lastSave >= SAVE_EVERY_MS) await save();
          beat();
        }
        await save();
      } finally {
        clearInterval(timer);
        clearInterval(poll);
        meter?.done();
        lease.release();
      }
      log.info('copy batch stored', { batch: input.batch.no, files: done.length, bytesRead, bytesStored: writer.storedBytes, resumed: saved !== undefined });
      return { files: done.length, bytes: done.reduce((s, f) => s + f.size, 0), bytesRead, dataBytesRead, bytesStored: writer.storedBytes };
    },
  };
}

/**
 * The parent backup's files of a replica set, by path (data files with chunks only), read once per parent and kept
 * briefly: every batch of an incremental needs them.
 */
const parentCache = new Map<string, Promise<Map<string, ManifestFile>>>();
function parentFilesOf(repo: Repository, parent: string, rs: string): Promise<Map<string, ManifestFile>> {
  const key = `${repo.location}\0${parent}\0${rs}`;
  let files = parentCache.get(key);
  if (!files) {
    files = repo.readReplicaSetManifest(parent, rs).then((m) => {
      if (!m) throw new CutpointError('REPO_FILE_MISSING', `the parent backup ${parent} of this incremental has no manifest for replica set ${rs} in ${repo.location}`);
      return new Map(m.files.filter((f) => f.kind === 'data' && f.chunks).map((f) => [f.path, f]));
    });
    parentCache.set(key, files);
    files.catch(() => parentCache.delete(key));
    setTimeout(() => parentCache.delete(key), 10 * 60_000).unref();
  }
  return files;
}

export type CopyActivities = ReturnType<typeof copyActivities>;
