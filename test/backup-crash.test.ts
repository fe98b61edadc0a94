/**
 * Crashes during a backup, with the workers as separate processes (`cutpoint agent`, `cutpoint worker`) that the
 * test SIGKILLs mid-copy and restarts, under the bank workload: the backup completes, intact, and recovers to exactly
 * the workload's history at its common timestamp; copied work is not redone (the bytes the restarted
 * agent process read, counted by the kernel, and the copy activities' own count in the workflow history); the backup cursor is resumed through
 * its recorded session (no 50886 wait, no second open), and no cursor is left open at the end. The file in flight at
 * the kill keeps the bytes the killed process stored and equals the source's bytes on both sides of the resume point.
 */
import { linkSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BatchHeartbeat } from '../activities/agent/copy-batch.ts';
import { copySizes } from '../activities/agent/copy-batch.ts';
import { backupProgress, backupResult, startBackup } from '../api/backups.ts';
import { eventually, sleep } from '../sim/testkit.ts';
import { activitiesOf, expectCompleteAndIntact, openBackupCursors } from './helpers/backup-checks.ts';
import { startCli } from './helpers/cli.ts';
import { materialize, recoverBankAt } from './helpers/recover.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import type { ReplicaSetManifest } from '../common/manifest.ts';
import type { Ts } from '../common/timestamp.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { agentTaskQueue } from '../common/task-queues.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import type { ReplicaSetInfo } from '../sim/cluster/cluster.ts';
import { tempDir } from './helpers/temp.ts';
import { compareWithLiveSource } from './helpers/live-source.ts';
import { fsRepository } from '../repository/repository.ts';
import { pendingName } from '../repository/storage.ts';

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

/** The backup's copy, recovered at its common timestamp, is exactly the bank workload's history at that time. */
async function expectRecoversToHistory(dir: string, id: string, rm: ReplicaSetManifest, common: Ts): Promise<void> {
  const accounts = await recoverBankAt(materialize(dir, id, rm), common);
  expect(new Oracle(stack.workload!.history).verify([{ name: 'rs0', accounts }], toBsonTimestamp(common)).mismatches).toEqual([]);
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
  it('agent SIGKILLed: the backup completes; done files are not copied again, the file in flight resumes, the cursor is resumed', async () => {
    spawnWorker('worker');
    let agent = spawnWorker('agent');
    const dir = repo();
    const rate = 200_000;
    // One batch at a time over the whole list, so the retried batch shows exactly what was saved.
    // A short heartbeat timeout: the dead agent's activities are handed over in seconds.
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, bytesPerSec: rate, keepAliveIntervalMs: 1000, batchMaxFiles: 1000, copyParallelism: 1, agentHeartbeatTimeoutMs: 6000 });
    const child = stack.h.client.workflow.getHandle(`${id}.rs0`);

    // Wait until the batch has heartbeated a file in flight past its first checkpoints, then kill at once.
    const beat = await eventually(async () => {
      const d = await child.describe().catch(() => undefined);
      const a = d?.raw.pendingActivities?.find((x) => x.activityType?.name === 'copyBatch');
      const payload = a?.heartbeatDetails?.payloads?.[0];
      if (!payload) return undefined;
      const hb = stack.h.client.options.loadedDataConverter.payloadConverter.fromPayload<BatchHeartbeat>(payload);
      return hb.current && hb.current.offset >= 2 * copySizes(rate).checkpointBytes && hb.done.length > 0 ? hb : undefined;
    }, 90_000, 'a copy heartbeat with finished files and a file in flight past two checkpoints');
    await kill(agent);
    const savedAtKill = beat!.done.reduce((s, f) => s + f.size, 0) + beat!.current!.offset;
    expect((await backupProgress(stack.h.client, id)).phase).toBe('copy');
    // The file in flight: what the killed process stored of it, and its source, hard-linked so that it can be read
    // after the backup even if the node removes it (an old journal file, once the cursor is closed).
    const resumeAt = beat!.current!.offset;
    const [inFlight] = await fsRepository(dir).fileList(id, 'rs0').read(beat!.current!.index, beat!.current!.index + 1);
    const [chosen] = await openBackupCursors(stack.cluster);
    const dbpath = (stack.cluster.describe().shards[0] as ReplicaSetInfo).members.find((m) => m.host === chosen)!.dbpath;
    const stored = join(dir, 'backups', id, 'rs0', 'files', inFlight!.path);
    const storedAtKill = readFileSync(pendingName(stored));
    expect(storedAtKill.length).toBeGreaterThanOrEqual(resumeAt);
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
    const rm = expectCompleteAndIntact(dir, id);
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
    await expectRecoversToHistory(dir, id, rm, summary.commonTimestamp!);

    // The resumed file: the stored prefix kept as the killed process wrote it, and every byte the source cannot have
    // changed since it was copied equal to the source's, before and after the resume point.
    const resumed = readFileSync(stored);
    expect(resumed.subarray(0, resumeAt).equals(storedAtKill.subarray(0, resumeAt)), `${inFlight!.path}: the prefix stored before the kill`).toBe(true);
    const live = compareWithLiveSource(inFlight!.path, resumed, readFileSync(source));
    expect(live.mismatches, inFlight!.path).toEqual([]);
    expect(live.compared.some(([from]) => from < resumeAt) && live.compared.some(([, to]) => to > resumeAt)).toBe(true);

    const acts = await activitiesOf(stack.h.client, `${id}.rs0`);
    const copies = acts.filter((a) => a.type === 'copyBatch');
    expect(copies).toHaveLength(1);
    expect(copies[0]!.attempts.at(-1)).toBeGreaterThanOrEqual(2);
    const listed = (await backupProgress(stack.h.client, id)).bytesTotal;
    const bytesRead = copies.reduce((s, a) => s + (a.result as { bytesRead: number }).bytesRead, 0);
    const total = rm.files.reduce((s, f) => s + f.size, 0);
    // Counted by the kernel: the restarted process read at most what was left of the source files (the whole list
    // minus what the last heartbeat before the kill recorded), the prefix of the file in flight once more from the
    // repository (a resumed file's hash is recomputed over what the killed attempt
    // stored), and its sockets' traffic (SOCKET_SLACK). The files finished before the kill weigh more than that slack,
    // so a copy that started over would exceed the bound.
    const doneAtKill = beat!.done.reduce((s, f) => s + f.size, 0);
    expect(doneAtKill).toBeGreaterThan(2 * SOCKET_SLACK);
    expect(readByRestarted).toBeLessThanOrEqual(total - savedAtKill + beat!.current!.offset + SOCKET_SLACK);
    // ... and the copy's own count agrees: it read from the dbpath only what the killed attempt had not stored.
    expect(readByRestarted).toBeGreaterThanOrEqual(bytesRead - SOCKET_SLACK);
    expect(bytesRead).toBeGreaterThan(0);
    expect(bytesRead).toBeLessThanOrEqual(total - savedAtKill);
    expect(listed).toBeGreaterThan(savedAtKill);

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
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, bytesPerSec: 300_000, keepAliveIntervalMs: 1000, batchMaxFiles: 2, copyParallelism: 2 });
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
    const rm = expectCompleteAndIntact(dir, id);
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
    await expectRecoversToHistory(dir, id, rm, summary.commonTimestamp!);
    // Nothing was started over: one open, and exactly one copy activity per planned batch.
    const acts = await activitiesOf(stack.h.client, `${id}.rs0`);
    const planned = acts.filter((a) => a.type === 'planCopyBatches').reduce((n, a) => n + (a.result as { batches: unknown[] }).batches.length, 0);
    expect(planned).toBeGreaterThan(1);
    expect(acts.filter((a) => a.type === 'copyBatch')).toHaveLength(planned);
    expect(acts.filter((a) => a.type === 'openBackupCursor')).toHaveLength(1);
    expect(acts.filter((a) => a.type === 'planCopyBatches')).toHaveLength(1);
  });
});
