/**
 * Cancel in every phase of a replica-set backup — waiting for the cluster lock, node selection, open, extend, copy,
 * close, manifest — each phase
 * held in place (a simulator fail point holding the phase's command on every node, or a repository write held by a
 * storage decorator), then the `cancel` signal: the backup ends `cancelled`, no backup cursor stays open on any
 * node, nothing is marked complete, and only the cancelled cluster manifest is left (data and work files removed,
 * and nothing reappears after the held operation is released).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Document } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FaultyStorage } from '../repository/faulty-storage.ts';
import { FsStorage } from '../repository/fs-storage.ts';
import { fsRepository, Repository } from '../repository/repository.ts';
import { backupProgress, backupResult, cancelBackup, startBackup } from '../api/backups.ts';
import { direct, eventually, sleep } from '../sim/testkit.ts';
import { expectEndedWithoutData, filesUnder, openBackupCursors, pendingActivities } from './helpers/backup-checks.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const uri = () => stack.cluster.describe().shards[0].uri as string;
const repo = () => tempDir('cutpoint-cancel-repo-');
/** Repositories whose storage the test can hold (by path); every other path is a plain filesystem repository. */
const faulty = new Map<string, FaultyStorage>();

beforeAll(async () => {
  stack = await startSimStack({
    replsetOnly: true,
    members: 2,
    checkpointMs: 1000,
    repository: (path) => {
      const f = faulty.get(path);
      return f ? new Repository(f) : fsRepository(path);
    },
  });
});
afterEach(async () => {
  await failPoint('off');
});
afterAll(async () => {
  await stack?.stop();
});

/** Sets `simHangBeforeCommand` on every node. */
async function failPoint(mode: 'alwaysOn' | 'off', data: Document = {}): Promise<void> {
  for (const node of stack.cluster.shards[0]!.localNodes) {
    const c = direct(node.address);
    try {
      await c.db('admin').command({ configureFailPoint: 'simHangBeforeCommand', mode, data });
    } finally {
      await c.close();
    }
  }
}

/**
 * Starts a backup, waits until `activity` is pending in the replica-set workflow (held there), cancels, releases
 * the hold a moment later, and checks the outcome.
 */
async function cancelDuring(activity: string, hold: { dir?: string; release: () => Promise<void> | void; manifests?: string[] }, extra: Parameters<typeof startBackup>[1] extends infer T ? Partial<T> : never = {}): Promise<void> {
  const dir = hold.dir ?? repo();
  const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, keepAliveIntervalMs: 1000, ...extra });
  await eventually(async () => (await pendingActivities(stack.h.client, `${id}.rs0`)).includes(activity), 60_000, `${activity} to be pending`);
  // Held: it stays pending.
  await sleep(500);
  expect(await pendingActivities(stack.h.client, `${id}.rs0`)).toContain(activity);
  await cancelBackup(stack.h.client, id, `cancel during ${activity}`);
  await sleep(1000);
  await hold.release();
  const summary = await backupResult(stack.h.client, id);
  expect(summary.status).toBe('cancelled');
  expect(summary.error).toEqual({ code: 'CANCELLED', message: `cancelled: cancel during ${activity}` });
  expect(await openBackupCursors(stack.cluster)).toEqual([]);
  const manifests = hold.manifests ?? ['manifest.json'];
  expectEndedWithoutData(dir, id, 'cancelled', manifests);
  // Whatever was held and then released has finished by now: nothing reappears, no cursor opens late.
  await sleep(2500);
  expect(filesUnder(join(dir, 'backups', id))).toEqual(manifests);
  expect(await openBackupCursors(stack.cluster)).toEqual([]);
}

describe('cancel in every phase', () => {
  it('node selection (replSetGetStatus held)', async () => {
    await failPoint('alwaysOn', { commands: ['replSetGetStatus'] });
    await cancelDuring('selectBackupNode', { release: () => failPoint('off') });
  });

  it('open ($backupCursor held: the open completes after the cancel, and its cursor is killed)', async () => {
    await failPoint('alwaysOn', { commands: ['aggregate'], stages: ['$backupCursor'] });
    await cancelDuring('openBackupCursor', { release: () => failPoint('off') });
  });

  it('extend ($backupCursorExtend held)', async () => {
    await failPoint('alwaysOn', { commands: ['aggregate'], stages: ['$backupCursorExtend'] });
    await cancelDuring('extendBackupCursor', { release: () => failPoint('off') });
  });

  it('copy (throttled)', async () => {
    await cancelDuring('copyBatch', { release: () => undefined }, { bytesPerSec: 50_000, batchMaxFiles: 2 });
  });

  it('close (killCursors held)', async () => {
    await failPoint('alwaysOn', { commands: ['killCursors'] });
    await cancelDuring('closeBackupCursor', { release: () => failPoint('off') });
  });

  it('manifest (the replica-set manifest write held)', async () => {
    const dir = repo();
    const storage = new FaultyStorage(new FsStorage(dir));
    faulty.set(dir, storage);
    const pause = storage.pause({ ops: ['writeFile'], path: /^backups\/[^/]+\/rs0\/manifest\.json$/ });
    // The write, once started, completes before the cancel takes effect (so the data removal comes after it): the
    // replica-set manifest stays beside the cancelled cluster manifest; its files are gone.
    await cancelDuring('writeReplicaSetManifest', { dir, release: () => pause.release(), manifests: ['manifest.json', 'rs0/manifest.json'] });
    expect(pause.held()).toBe(1);
  });

  it("waiting for the cluster lock: the waiting backup ends cancelled without touching anything; the holder's backup goes on", async () => {
    const holderDir = repo();
    const holder = await startBackup(stack.h.client, { uri: uri(), repo: holderDir, keepAliveIntervalMs: 1000, bytesPerSec: 50_000, batchMaxFiles: 2 });
    await eventually(async () => (await pendingActivities(stack.h.client, `${holder.id}.rs0`)).includes('copyBatch'), 60_000, 'the first backup to copy');
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, keepAliveIntervalMs: 1000, ifBusy: 'wait' });
    await eventually(async () => (await backupProgress(stack.h.client, id)).phase === 'waiting', 30_000, 'the second backup to wait for the lock');
    await cancelBackup(stack.h.client, id, 'cancel while waiting');
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('cancelled');
    expect(summary.error).toEqual({ code: 'CANCELLED', message: 'cancelled: cancel while waiting' });
    // It never got the lock: no manifest, no child workflow, no cursor of its own.
    expect(existsSync(join(dir, 'backups', id))).toBe(false);
    await expect(stack.h.client.workflow.getHandle(`${id}.rs0`).describe()).rejects.toThrow(/not found/i);
    expect(await openBackupCursors(stack.cluster)).toHaveLength(1);
    // The holder still runs, and its own cancel still cleans up.
    expect((await backupProgress(stack.h.client, holder.id)).status).toBe('running');
    await cancelBackup(stack.h.client, holder.id, 'test done');
    expect((await backupResult(stack.h.client, holder.id)).status).toBe('cancelled');
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
  });
});
