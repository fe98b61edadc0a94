/**
 * Crashes during a backup, with the workers as separate processes (`cutpoint agent`, `cutpoint worker`) that the
 * test SIGKILLs mid-copy and restarts, under the bank workload: the backup completes, intact, and recovers to exactly
 * the workload's history at its common timestamp; copied work is not redone (the bytes the restarted
 * agent process read, counted by the kernel, and the copy activities' own count in the workflow history); the backup cursor is resumed through
 * its recorded session (no 50886 wait, no second open), and no cursor is left open at the end. The copy batch's saved
 * result is its resume point: the files it names are not read again, the file in flight is copied again from its
 * start, and no chunk is stored twice (each is found in the index the killed agent wrote); the file in flight,
 * rebuilt from its chunks, equals the source wherever the live source cannot have changed.
 */
import { linkSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BatchHeartbeat } from '../activities/agent/copy-batch.ts';
import { backupProgress, backupResult, startBackup } from '../api/backups.ts';
import { direct, eventually, sleep } from '../sim/testkit.ts';
import { randomBytes } from 'node:crypto';
import { activitiesOf, expectCompleteAndIntact, openBackupCursors } from './helpers/backup-checks.ts';
import { startCli } from './helpers/cli.ts';
import { materialize, recoverBankAt } from './helpers/recover.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import type { Ts } from '../common/timestamp.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { agentTaskQueue } from '../common/task-queues.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import type { ReplicaSetInfo } from '../sim/cluster/cluster.ts';
import { tempDir } from './helpers/temp.ts';
import { compareWithLiveSource } from './helpers/live-source.ts';
import { fsRepository } from '../repository/repository.ts';

let stack: SimStack;
const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
const repo = () => tempDir('cutpoint-crash-repo-');
const uri = () => stack.cluster.describe().shards[0].uri as string;
const hosts = () => stack.cluster.describe().shards[0].hosts as string[];
const processes: Array<ReturnType<typeof startCli>> = [];

/** `cutpoint agent` for every member, or `cutpoint worker`, as a separate process. */
function spawnWorker(kind: 'agent' | 'worker'): ReturnType<typeof startCli> {
  const args = kind === 'agent' ? ['agent', ...hosts().flatMap((h) => ['--mongod', h])] : ['worker'];
  const p = startCli(args, env());
  processes.push(p);
  return p;
}

/** The backup's copy (rebuilt into `dbpath`), recovered at its common timestamp, is exactly the bank workload's history then. */
async function expectRecoversToHistory(dbpath: string, common: Ts): Promise<void> {
  const accounts = await recoverBankAt(dbpath, common);
  expect(new Oracle(stack.workload!.history).verify([{ name: 'rs0', accounts }], toBsonTimestamp(common)).mismatches).toEqual([]);
}

/** Every chunk every index file of the repository lists (one entry per stored copy). */
async function indexEntries(dir: string): Promise<Array<{ id: string; pack: string; length: number }>> {
  const storage = fsRepository(dir).storage;
  const out: Array<{ id: string; pack: string; length: number }> = [];
  for (const path of await storage.list('index')) {
    const doc = JSON.parse((await storage.readFile(path)).toString('utf8')) as { pack: string; blobs: Array<{ id: string; length: number }> };
    for (const b of doc.blobs) out.push({ id: b.id, pack: doc.pack, length: b.length });
  }
  return out;
}

/** Bytes a process has read through read(2) and friends, from files and sockets (`rchar` of /proc/<pid>/io). */
function rchar(pid: number): number {
  const line = readFileSync(`/proc/${pid}/io`, 'utf8').split('\n').find((l) => l.startsWith('rchar:'));
  return Number(line!.split(':')[1]);
}

/** Reads from sockets that are not the copy (Temporal polls and heartbeats, MongoDB keep-alives) during a backup. */
const SOCKET_SLACK = 512 * 1024;

/** Whether the worker `identity` polls the activity task queue `queue`. */
async function pollsActivities(queue: string, identity: string): Promise<boolean> {
  const r = await stack.h.client.workflowService.describeTaskQueue({
    namespace: stack.h.namespace,
    taskQueue: { name: queue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });
  return (r.pollers ?? []).some((p) => p.identity === identity);
}

async function kill(p: ReturnType<typeof startCli>): Promise<void> {
  p.child.kill('SIGKILL');
  const r = await p.done;
  expect(r.signal).toBe('SIGKILL');
}

beforeAll(async () => {
  // No worker in this process: the test's own processes serve every task queue. Larger journal files make a file
  // in flight big enough to be killed in the middle of.
  stack = await startSimStack({ replsetOnly: true, members: 2, checkpointMs: 1000, logFileSize: 2 * 1024 * 1024, orchestrator: false, agents: false, bank: true });
});
afterEach(async () => {
  for (const p of processes.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) await kill(p);
});
afterAll(async () => {
  await stack?.stop();
});

describe('crash of a worker process mid-copy', () => {
  it('agent SIGKILLed: the backup completes; saved files are not copied again, no chunk is stored twice, the cursor is resumed', async () => {
    // 2 MiB of incompressible documents: a file whose copy at this rate takes long enough for its first chunks to be
    // made durable (the copy flushes every few seconds) before the kill.
    const client = direct(stack.cluster.shards[0]!.primary()!.address);
    try {
      await client.db('app').collection('blobs').insertMany(Array.from({ length: 32 }, (_, i) => ({ _id: i, data: randomBytes(64 * 1024) })) as never[]);
    } finally {
      await client.close();
    }
    spawnWorker('worker');
    let agent = spawnWorker('agent');
    const dir = repo();
    const rate = 400_000;
    // One batch at a time over the whole list, so the retried batch shows exactly what was saved.
    // A short heartbeat timeout: the dead agent's activities are handed over in seconds.
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, bytesPerSec: rate, keepAliveIntervalMs: 1000, batchMaxFiles: 1000, copyParallelism: 1, agentHeartbeatTimeoutMs: 6000 });
    const child = stack.h.client.workflow.getHandle(`${id}.rs0`);

    // Wait until the batch has saved finished files (its resume point) and has a file in flight, then kill at once.
    const beat = await eventually(async () => {
      const d = await child.describe().catch(() => undefined);
      const a = d?.raw.pendingActivities?.find((x) => x.activityType?.name === 'copyBatch');
      const payload = a?.heartbeatDetails?.payloads?.[0];
      if (!payload) return undefined;
      const hb = stack.h.client.options.loadedDataConverter.payloadConverter.fromPayload<BatchHeartbeat>(payload);
      return hb.saved > 0 && hb.current !== undefined && hb.currentFlushed ? hb : undefined;
    }, 90_000, 'a copy heartbeat with saved files and a file in flight with chunks already durable');
    await kill(agent);
    expect((await backupProgress(stack.h.client, id)).phase).toBe('copy');
    // What the killed agent made durable: the saved batch result, and the chunks the index held.
    const r0 = fsRepository(dir);
    const [batchNo] = await r0.listBatchResults(id, 'rs0');
    const savedAtKill = (await r0.readBatchResult(id, 'rs0', batchNo!))!.files;
    expect(savedAtKill.length).toBeGreaterThanOrEqual(beat!.saved);
    const savedBytes = savedAtKill.reduce((s, f) => s + f.size, 0);
    const indexedAtKill = new Set((await indexEntries(dir)).map((e) => e.id));
    expect(savedAtKill.every((f) => f.chunks!.every((c) => indexedAtKill.has(c)))).toBe(true);
    // The file in flight: its source, hard-linked so that it can be read after the backup even if the node removes
    // it (an old journal file, once the cursor is closed).
    const [inFlight] = await r0.fileList(id, 'rs0').read(beat!.current!, beat!.current! + 1);
    const [chosen] = await openBackupCursors(stack.cluster);
    const dbpath = (stack.cluster.describe().shards[0] as ReplicaSetInfo).members.find((m) => m.host === chosen)!.dbpath;
    const source = join(tempDir('cutpoint-crash-source-'), 'in-flight');
    linkSync(join(dbpath, inFlight!.path), source);

    await sleep(2000);
    agent = spawnWorker('agent');
    // The bytes the restarted agent process reads, counted by the kernel (rchar of /proc/<pid>/io: every read(2),
    // files and sockets alike), from when it polls until the backup is done: not the copy's own counter.
    const pid = agent.child.pid!;
    await eventually(() => pollsActivities(agentTaskQueue(hosts()[0]!), `${pid}@${hostname()}`), 30_000, 'the restarted agent to poll');
    const rcharBefore = rchar(pid);
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    const readByRestarted = rchar(pid) - rcharBefore;
    const rm = await expectCompleteAndIntact(dir, id);
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
    const restored = await materialize(dir, id, rm);
    // Read before the recovery below, which removes journal files it has replayed.
    const rebuiltInFlight = readFileSync(join(restored, inFlight!.path));
    await expectRecoversToHistory(restored, summary.commonTimestamp!);

    // No chunk lost, none stored twice: every chunk the killed agent indexed is still indexed, and across every pack
    // of the repository each chunk is stored once (the retried batch found the killed one's chunks in the index).
    const entries = await indexEntries(dir);
    const ids = entries.map((e) => e.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length - new Set(ids).size).toBe(0);
    expect([...indexedAtKill].every((c) => ids.includes(c))).toBe(true);
    // The file in flight was read again from its start, and the chunks of it the killed agent had made durable were
    // found in the index, not stored again (the count above).
    const inSaved = new Set(savedAtKill.flatMap((f) => f.chunks!));
    const inFlightChunks = rm.files.find((f) => f.path === inFlight!.path)!.chunks!;
    expect(inFlightChunks.some((c) => indexedAtKill.has(c) && !inSaved.has(c))).toBe(true);
    // The saved files are the backup's, as the killed agent stored them.
    for (const f of savedAtKill) expect(rm.files.find((x) => x.path === f.path)?.chunks, f.path).toEqual(f.chunks);

    // The file in flight, rebuilt from its chunks, equals the source wherever the live source cannot have changed.
    const live = compareWithLiveSource(inFlight!.path, rebuiltInFlight, readFileSync(source));
    expect(live.mismatches, inFlight!.path).toEqual([]);
    expect(live.compared.length).toBeGreaterThan(0);

    const acts = await activitiesOf(stack.h.client, `${id}.rs0`);
    const copies = acts.filter((a) => a.type === 'copyBatch');
    expect(copies).toHaveLength(1);
    expect(copies[0]!.attempts.at(-1)).toBeGreaterThanOrEqual(2);
    // What the retried attempt stored is exactly the chunks not durable at the kill, each once: none of the in-flight
    // file's durable chunks again (packs are named by their content, so only this count shows a chunk stored twice
    // when the two attempts happened to build the same pack).
    const newSinceKill = entries.filter((e) => !indexedAtKill.has(e.id)).reduce((s, e) => s + e.length, 0);
    expect((copies[0]!.result as { bytesStored: number }).bytesStored).toBe(newSinceKill);
    const bytesRead = copies.reduce((s, a) => s + (a.result as { bytesRead: number }).bytesRead, 0);
    const total = rm.files.reduce((s, f) => s + f.size, 0);
    // Counted by the kernel: the restarted process read at most the files not saved at the kill (the file in flight
    // again from its start), the repository's index and the saved result, and its sockets' traffic (SOCKET_SLACK).
    // The files saved before the kill weigh more than that slack, so a copy that started over would exceed the bound.
    const indexBytes = (await fsRepository(dir).storage.list('index')).length * 64 * 1024;
    expect(savedBytes).toBeGreaterThan(2 * SOCKET_SLACK);
    expect(readByRestarted).toBeLessThanOrEqual(total - savedBytes + indexBytes + SOCKET_SLACK);
    // ... and the copy's own count agrees: it read from the dbpath only the files the killed attempt had not saved.
    expect(readByRestarted).toBeGreaterThanOrEqual(bytesRead - SOCKET_SLACK);
    expect(bytesRead).toBeGreaterThan(0);
    expect(bytesRead).toBe(total - savedBytes);

    // The cursor was opened once and kept: the keep-alive was retried on the restarted agent with the same session.
    const opens = acts.filter((a) => a.type === 'openBackupCursor');
    expect(opens).toHaveLength(1);
    expect(opens[0]!.attempts).toEqual([1]);
    // ... and proven alive after the copy: the same cursor pinned the checkpoint through the crash.
    expect(acts.filter((a) => a.type === 'proveBackupCursorAlive')).toHaveLength(1);
  });

  it('orchestrator SIGKILLed and restarted: the backup completes intact', async () => {
    spawnWorker('agent');
    let worker = spawnWorker('worker');
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, bytesPerSec: 600_000, keepAliveIntervalMs: 1000, batchMaxFiles: 2, copyParallelism: 2 });
    let last: unknown;
    await eventually(async () => {
      const p = await backupProgress(stack.h.client, id, { inFlight: true }).catch((e: unknown) => void (last = e));
      if (p) last = p;
      return p && p.phase === 'copy' && p.bytesDone > 0 && p.bytesDone < p.bytesTotal / 2;
    }, 90_000, 'the copy to be under way').catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; last progress: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    });
    await kill(worker);
    await sleep(3000);
    worker = spawnWorker('worker');
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    const rm = await expectCompleteAndIntact(dir, id);
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
    await expectRecoversToHistory(await materialize(dir, id, rm), summary.commonTimestamp!);
    // Nothing was started over: one open, and exactly one copy activity per planned batch.
    const acts = await activitiesOf(stack.h.client, `${id}.rs0`);
    const planned = acts.filter((a) => a.type === 'extendAndPlanCopy').reduce((n, a) => n + (a.result as { batches: unknown[] }).batches.length, 0);
    expect(planned).toBeGreaterThan(1);
    expect(acts.filter((a) => a.type === 'copyBatch')).toHaveLength(planned);
    expect(acts.filter((a) => a.type === 'openBackupCursor')).toHaveLength(1);
    expect(acts.filter((a) => a.type === 'extendAndPlanCopy')).toHaveLength(1);
  });
});
