/**
 * Replica-set backup on the real Temporal dev server and the simulator: every phase a Temporal activity, the
 * repository layout v1, the operator surface (progress, cancel, setThrottle), and — the point of it all — files that
 * recover to exactly the backup's timestamp under the bank workload.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupProgress, BackupSummary } from '../common/backup-types.ts';
import type { ClusterManifest, ReplicaSetManifest } from '../common/manifest.ts';
import { CutpointBytes, CutpointCluster, CutpointPhase } from '../common/search-attributes.ts';
import { compareTs } from '../common/timestamp.ts';
import { backupProgress, backupResult, cancelBackup, setBackupThrottle, startBackup } from '../api/backups.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import { direct, eventually, sleep } from '../sim/testkit.ts';
import { materialize, recoverBankAt } from './helpers/recover.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { tempDir } from './helpers/temp.ts';
import { CUTPOINT_BIN, runCli } from './helpers/cli.ts';
import { expectCompleteAndIntact } from './helpers/backup-checks.ts';

let stack: SimStack;
/** The complete backup of the first test, exported by the second (no second backup: it would add its run time). */
let firstBackup: { dir: string; id: string; summary: BackupSummary } | undefined;
/** The export reads the repository only: Temporal at an address nothing listens on. */
const noTemporal = { TEMPORAL_ADDRESS: '127.0.0.1:1' };
/** Files under `dir`: relative path → SHA-256. */
const fileHashes = (dir: string): Record<string, string> =>
  Object.fromEntries(filesUnder(dir).map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));
const repo = () => tempDir('cutpoint-repo-');
/** Files (not directories) under `dir`, relative, sorted. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 3, checkpointMs: 1000, bank: true });
});
afterAll(async () => {
  await stack?.stop();
});

function uri(): string {
  return stack.cluster.describe().shards[0].uri as string;
}

async function openBackupCursors(): Promise<number> {
  let n = 0;
  for (const node of stack.cluster.shards[0]!.localNodes) {
    const s = await direct(node.address).db('admin').command({ serverStatus: 1 });
    if (s.storageEngine.backupCursorOpen) n++;
  }
  return n;
}

describe('replica-set backup', () => {
  it('backs up under the bank workload; the copy recovers to exactly history at the backup timestamp', async () => {
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, keepAliveIntervalMs: 1000 });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('complete');
    expect(summary.commonTimestamp).not.toBeNull();

    const cm = readJson<ClusterManifest>(join(dir, 'backups', id, 'manifest.json'));
    expect(cm).toMatchObject({ format: 'cutpoint/v2', id, status: 'complete', cluster: 'rs0', commonTimestamp: summary.commonTimestamp });
    expect(readJson<{ format: string }>(join(dir, 'cutpoint.json')).format).toBe('cutpoint/v2');
    const rm = readJson<ReplicaSetManifest>(join(dir, 'backups', id, 'rs0', 'manifest.json'));
    expect(rm.node).toBe(summary.replicaSets[0]!.node);
    // A secondary was chosen (healthy, least lag), not the primary.
    expect(rm.node).not.toBe(stack.cluster.shards[0]!.primary()!.address);
    expect(rm.files.some((f) => f.kind === 'journal')).toBe(true);
    expect(rm.files.some((f) => f.kind === 'storage.bson')).toBe(true);
    expect(rm.files.map((f) => f.path)).toContain('WiredTiger.backup');
    expect(compareTs(rm.extendedTo!, summary.commonTimestamp!)).toBe(0);
    // Every file is its chunks, each stored once in a pack an index names; the first backup into a new repository
    // stored them all (bytesStored: compressed, so under the logical size, and more than nothing).
    await expectCompleteAndIntact(dir, id);
    expect(rm.files.every((f) => (f.chunks?.length ?? 0) === Math.ceil(f.size / (1024 * 1024)) || f.kind === 'journal')).toBe(true);
    expect(summary.bytesStored).toBeGreaterThan(0);
    expect(summary.bytesStored).toBeLessThan(summary.bytes);
    expect(summary.replicaSets[0]!.bytesStored).toBe(summary.bytesStored);
    expect(await openBackupCursors()).toBe(0);
    const final = await backupProgress(stack.h.client, id);
    expect(final).toMatchObject({ status: 'complete', phase: 'done' });
    expect(final.bytesDone).toBe(final.bytesTotal);
    expect(final.bytesDone).toBeGreaterThan(0);

    const dbpath = await materialize(dir, id, rm);
    const accounts = await recoverBankAt(dbpath, summary.commonTimestamp!);
    const ts = toBsonTimestamp(summary.commonTimestamp!);
    const verdict = new Oracle(stack.workload!.history).verify([{ name: 'rs0', accounts }], ts);
    expect(verdict.mismatches).toEqual([]);
    firstBackup = { dir, id, summary };
  });

  it('cutpoint export of that backup: the directory recovers to history at its timestamp; the tar stream on stdout holds the same files', async () => {
    expect(firstBackup, 'the first test made the backup this one exports').toBeDefined();
    const { dir, id, summary } = firstBackup!;
    const out = join(tempDir('cutpoint-export-'), 'rs0');
    const exported = await runCli(['export', id, '--repo', dir, '--replica-set', 'rs0', '--out', out], noTemporal);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/^exported rs0 of backup .* files/);

    // `--tar -`: the archive is stdout (bytes, not text); GNU tar extracts the same files with the same bytes.
    const child = spawn(process.execPath, [CUTPOINT_BIN, 'export', id, '--repo', dir, '--replica-set', 'rs0', '--tar', '-'], { env: { ...process.env, ...noTemporal }, stdio: ['ignore', 'pipe', 'inherit'] });
    const parts: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => parts.push(d));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    const untarred = tempDir('cutpoint-untar-');
    const tar = spawnSync('tar', ['-x', '-C', untarred], { input: Buffer.concat(parts) });
    expect(tar.status, tar.stderr.toString()).toBe(0);
    expect(fileHashes(untarred)).toEqual(fileHashes(out));

    const [refused, unknown] = await Promise.all([
      runCli(['export', id, '--repo', dir, '--replica-set', 'rs0', '--out', out], noTemporal),
      runCli(['export', id, '--repo', dir, '--replica-set', 'shard9', '--tar', join(untarred, 'x.tar')], noTemporal),
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/TARGET_NOT_EMPTY: export target .* is not empty; give --force/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/BAD_USAGE: backup '.*' has no replica set 'shard9' \(it has rs0\)/);

    const accounts = await recoverBankAt(out, summary.commonTimestamp!);
    const verdict = new Oracle(stack.workload!.history).verify([{ name: 'rs0', accounts }], toBsonTimestamp(summary.commonTimestamp!));
    expect(accounts.size).toBeGreaterThan(0);
    expect(verdict.mismatches).toEqual([]);
  });

  it('progress grows monotonically to the totals; cancel mid-copy closes the cursor and ends cancelled', async () => {
    const dir = repo();
    // A slow copy (throttled) so that progress and cancellation happen mid-copy.
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, bytesPerSec: 200_000, keepAliveIntervalMs: 1000, batchMaxFiles: 2 });
    const seen: BackupProgress[] = [];
    await eventually(async () => {
      const p = await backupProgress(stack.h.client, id);
      seen.push(p);
      return p.phase === 'copy' && p.bytesDone > 0;
    }, 60_000, 'copy to start');
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.bytesDone).toBeGreaterThanOrEqual(seen[i - 1]!.bytesDone);
    expect(seen.at(-1)!.bytesDone).toBeLessThanOrEqual(seen.at(-1)!.bytesTotal);
    expect(await openBackupCursors()).toBe(1);

    await cancelBackup(stack.h.client, id, 'test');
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('cancelled');
    expect(summary.error?.code).toBe('CANCELLED');
    expect(await openBackupCursors()).toBe(0);
    expect(readJson<ClusterManifest>(join(dir, 'backups', id, 'manifest.json')).status).toBe('cancelled');
    // Every copy had stopped before the partial data was removed: nothing reappears afterwards.
    await sleep(3000);
    expect(filesUnder(join(dir, 'backups', id))).toEqual(['manifest.json']);
  });

  it('backups are found in Temporal by their search attributes (cluster, status, kind, phase, bytes)', async () => {
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, keepAliveIntervalMs: 1000 });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('complete');
    const query = "CutpointCluster = 'rs0' AND CutpointKind = 'backup' AND CutpointStatus = 'complete' AND CutpointPhase = 'done'";
    const found = await eventually(async () => {
      const ids: string[] = [];
      for await (const w of stack.h.client.workflow.list({ query })) ids.push(w.workflowId);
      return ids.includes(id) ? ids : undefined;
    }, 30_000, 'the visibility store to list the backup');
    expect(found).toContain(id);
    const desc = await stack.h.client.workflow.getHandle(id).describe();
    expect(desc.typedSearchAttributes.get(CutpointBytes)).toBe(summary.bytes);
    // The replica set's child workflow carries the cluster and its own last phase.
    const child = await stack.h.client.workflow.getHandle(`${id}.rs0`).describe();
    expect(child.typedSearchAttributes.get(CutpointCluster)).toBe('rs0');
    expect(child.typedSearchAttributes.get(CutpointPhase)).toBe('done');
  });

  it('setThrottle mid-copy changes the measured rate within seconds', async () => {
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, bytesPerSec: 10_000, keepAliveIntervalMs: 1000, batchMaxFiles: 1, copyParallelism: 2 });
    await eventually(async () => (await backupProgress(stack.h.client, id)).bytesTotal > 0, 60_000, 'copy to start');
    // Rates scale with the backup's size, so that both phases are measured while the copy still runs.
    const total = (await backupProgress(stack.h.client, id)).bytesTotal;
    const slowRate = Math.max(20_000, Math.floor(total / 40));
    await setBackupThrottle(stack.h.client, id, slowRate);
    await sleep(1200);
    // Bytes of the batches in flight count too: a window shorter than one batch must still see the copy move. Those
    // come from heartbeats (at most one per 2 s), so windows are 4 s and the check allows for a heartbeat's lag.
    const rate = async (ms: number) => {
      const a = await backupProgress(stack.h.client, id, { inFlight: true });
      await sleep(ms);
      const b = await backupProgress(stack.h.client, id, { inFlight: true });
      expect(b.status).toBe('running');
      return ((b.bytesDone - a.bytesDone) * 1000) / ms;
    };
    const slow = await rate(4000);
    expect(slow).toBeLessThan(slowRate * 1.6);
    expect((await setBackupThrottle(stack.h.client, id, slowRate * 4)).bytesPerSec).toBe(slowRate * 4);
    await sleep(1200); // the copies poll the throttle every second
    const fast = await rate(4000);
    // Four times the rate: even with the samples a heartbeat late at both ends, well above the slow one.
    expect(fast).toBeGreaterThan(slow * 1.5);
    expect(fast).toBeGreaterThan(slowRate * 1.5);
    expect((await backupProgress(stack.h.client, id)).bytesPerSec).toBe(slowRate * 4);
    await setBackupThrottle(stack.h.client, id, 0);
    expect((await backupResult(stack.h.client, id)).status).toBe('complete');
    await expect(setBackupThrottle(stack.h.client, id, 1)).rejects.toThrow(/has already ended \(completed\)/);
  });

  it('refuses bad input before starting anything', async () => {
    await expect(startBackup(stack.h.client, { uri: 'mongodb://u:pw@127.0.0.1:1/?replicaSet=rs0', repo: repo() })).rejects.toThrow(/must not contain credentials/);
    await expect(startBackup(stack.h.client, { uri: uri(), repo: repo(), keepAliveIntervalMs: 900_000 })).rejects.toThrow(/well inside the 10-minute/);
    await expect(startBackup(stack.h.client, { uri: uri(), repo: repo(), id: '../escape' })).rejects.toThrow(/backup id/);
  });
});
